"""`agesweep logs`: an age's (or a point's) Batch job and its CloudWatch log lines, across attempts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from agesweep import aws, tracking
from agesweep.operations.deployment import DeployedStack
from agesweep.operations.errors import OpsError, aws_errors
from agesweep.operations.executions import Execution, describe_run, run_jobs


@dataclass
class LogLine:
    attempt: int
    stream: str
    timestamp: float
    message: str


def parse_point(text: str | None) -> dict[str, str]:
    """`variable=t2m,window=2020-01-01_2020-01-30` -> {variable: t2m, window: ...} (axis=value, comma-separated)."""
    point: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise OpsError(f"--point {text!r}: not axis=value[,axis=value] (e.g. variable=t2m,window=2020-01-01_2020-01-30)")
        point[name.strip()] = value.strip()
    return point


def _chosen(rows: list[tracking.AgeProgress], age: int | None, point: Mapping[str, str]) -> list[tracking.AgeProgress]:
    return [r for r in rows if (age is None or r.age == age) and all(r.point.get(k) == v for k, v in point.items())]


def _age_rows(
    stack: DeployedStack, execution: Execution, age: int | None, point: Mapping[str, str] | None = None,
) -> list[tracking.AgeProgress]:
    """The submitted rows of one age (or point); OpsError when the run has no plan, no such age or
    point (or the choice matches several points), or none submitted."""
    if age is None and not point:
        raise OpsError("pass --age AGE, or --point axis=value[,axis=value] for a run with named axes")
    found = run_jobs(stack, execution)
    if found.plan is None:
        raise OpsError(f"run {execution.run_id} has no plan (yet): {execution.status} {execution.error or ''}".rstrip())
    ages = sorted({item.age for item in found.plan.items if item.age is not None})
    if not point and age not in ages:
        shown = f"ages {ages[0]}..{ages[-1]}: {', '.join(map(str, ages))}" if ages else "its points: pass --point axis=value,..."
        raise OpsError(f"run {execution.run_id} has no age {age} ({shown})")
    chosen = _chosen(found.rows, age, point or {})
    labels = list(dict.fromkeys(row.label for row in chosen))
    if not chosen or len(labels) > 1:
        some = "; ".join(dict.fromkeys(row.label for row in found.rows))
        many = f" (it matches {len(labels)}: name a value for every axis)" if labels else ""
        raise OpsError(f"run {execution.run_id}: choose one point{many}; its points: {some[:500]}")
    submitted = [row for row in chosen if row.job_id]
    if not submitted:
        raise OpsError(f"{labels[0]} of run {execution.run_id} has not been submitted yet")
    return submitted


def job_id_of(submitted: list[tracking.AgeProgress], age: int | str, index: int | None) -> str:
    """The Batch job id of an age's job (one per slice: `index` picks it; an array child: `<id>:<index>`);
    ``age`` is the age, or the point in words."""
    age = f"age {age}" if isinstance(age, int) else age
    if len(submitted) > 1 and index is None:
        raise OpsError(f"{age} has {len(submitted)} jobs (one per slice): pass --index 0..{len(submitted) - 1}")
    row = submitted[index if len(submitted) > 1 and index is not None else 0]
    job_id = str(row.job_id)
    if not row.array_size:
        return job_id
    if index is None:
        raise OpsError(f"{age} is an array job of {row.array_size} slices: pass --index 0..{row.array_size - 1}")
    if not 0 <= index < row.array_size:
        raise OpsError(f"--index {index}: {age} has array indexes 0..{row.array_size - 1}")
    return f"{job_id}:{index}"


def age_job(
    stack: DeployedStack, run: str, age: int | None, index: int | None = None, point: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The described Batch job of one age or point (an array child with `index`)."""
    execution = describe_run(stack, run)
    rows = _age_rows(stack, execution, age, point)
    label = rows[0].label if point else f"age {age}"
    job_id = job_id_of(rows, label, index)
    with aws_errors():
        job = aws.describe_jobs(stack.client("batch"), [job_id]).get(job_id)
    if job is None:
        raise OpsError(f"job {job_id} of {label} is no longer known to Batch (jobs are kept about 7 days)")
    return dict(job)


def job_streams(job: dict[str, Any]) -> list[tuple[int, str]]:
    """(attempt number, log stream) in attempt order; the current attempt's stream last."""
    streams: list[tuple[int, str]] = []
    for number, attempt in enumerate(job.get("attempts") or [], start=1):
        name = (attempt.get("container") or {}).get("logStreamName")
        if name and name not in [s for _, s in streams]:
            streams.append((number, name))
    current = (job.get("container") or {}).get("logStreamName")
    if current and current not in [s for _, s in streams]:
        streams.append((len(job.get("attempts") or []) + 1, current))
    return streams


def _stream_lines(stack: DeployedStack, attempt: int, stream: str, tokens: dict[str, str | None]) -> Iterator[LogLine]:
    """The stream's lines after the last token read (`tokens` is updated); none while the stream does not exist."""
    logs = stack.client("logs")
    while True:
        kwargs: dict[str, Any] = {"logGroupName": stack.log_group, "logStreamName": stream, "startFromHead": True}
        if tokens.get(stream):
            kwargs["nextToken"] = tokens[stream]
        with aws_errors():
            try:
                page = logs.get_log_events(**kwargs)
            except ClientError as exc:
                if aws.is_not_found(exc):
                    return  # the stream appears when the container writes its first line
                raise
        for event in page.get("events", []):
            yield LogLine(attempt, stream, event["timestamp"] / 1000.0, event["message"])
        token = page.get("nextForwardToken")
        done = token == tokens.get(stream) or not page.get("events")
        tokens[stream] = token
        if done:
            return


def log_lines(
    stack: DeployedStack,
    run: str,
    age: int | None,
    *,
    index: int | None = None,
    point: Mapping[str, str] | None = None,
    follow: bool = False,
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogLine]:
    """The job's log lines across its attempts; with `follow`, until the job has ended."""
    job = age_job(stack, run, age, index, point)
    tokens: dict[str, str | None] = {}
    while True:
        finished = job["status"] in tracking.TERMINAL_STATUSES
        for attempt, stream in job_streams(job):
            yield from _stream_lines(stack, attempt, stream, tokens)
        if not follow or finished:
            return
        sleep(poll_s)
        with aws_errors():
            job = stack.client("batch").describe_jobs(jobs=[job["jobId"]])["jobs"][0]
