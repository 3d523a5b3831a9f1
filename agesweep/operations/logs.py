"""`agesweep logs`: an age's Batch job and its CloudWatch log lines, across attempts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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


def _age_rows(stack: DeployedStack, execution: Execution, age: int) -> list[tracking.AgeProgress]:
    """The submitted rows of one age; OpsError when the run has no plan, no such age, or none submitted."""
    found = run_jobs(stack, execution)
    if found.plan is None:
        raise OpsError(f"run {execution.run_id} has no plan (yet): {execution.status} {execution.error or ''}".rstrip())
    ages = sorted({item.age for item in found.plan.items})
    if age not in ages:
        raise OpsError(f"run {execution.run_id} has no age {age} (ages {ages[0]}..{ages[-1]}: {', '.join(map(str, ages))})")
    submitted = [row for row in found.rows if row.age == age and row.job_id]
    if not submitted:
        raise OpsError(f"age {age} of run {execution.run_id} has not been submitted yet")
    return submitted


def job_id_of(submitted: list[tracking.AgeProgress], age: int, index: int | None) -> str:
    """The Batch job id of an age's job (one per slice: `index` picks it; an array child: `<id>:<index>`)."""
    if len(submitted) > 1 and index is None:
        raise OpsError(f"age {age} has {len(submitted)} jobs (one per slice): pass --index 0..{len(submitted) - 1}")
    row = submitted[index if len(submitted) > 1 and index is not None else 0]
    job_id = str(row.job_id)
    if not row.array_size:
        return job_id
    if index is None:
        raise OpsError(f"age {age} is an array job of {row.array_size} slices: pass --index 0..{row.array_size - 1}")
    if not 0 <= index < row.array_size:
        raise OpsError(f"--index {index}: age {age} has array indexes 0..{row.array_size - 1}")
    return f"{job_id}:{index}"


def age_job(stack: DeployedStack, run: str, age: int, index: int | None = None) -> dict[str, Any]:
    """The described Batch job of one age (an array child with `index`)."""
    execution = describe_run(stack, run)
    job_id = job_id_of(_age_rows(stack, execution, age), age, index)
    with aws_errors():
        job = aws.describe_jobs(stack.client("batch"), [job_id]).get(job_id)
    if job is None:
        raise OpsError(f"job {job_id} of age {age} is no longer known to Batch (jobs are kept about 7 days)")
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
    age: int,
    *,
    index: int | None = None,
    follow: bool = False,
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogLine]:
    """The job's log lines across its attempts; with `follow`, until the job has ended."""
    job = age_job(stack, run, age, index)
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
