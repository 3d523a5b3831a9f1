"""The alert for a failed Batch job: which run, which age and slice (or point), which attempt, why, the log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agesweep import aws
from agesweep.alerts.common import subject_line, when
from agesweep.alerts.models import Alert, AlertEvent
from agesweep.batch_job import JobDescription
from agesweep.escalation import classify, is_cancel
from agesweep.joblogs import log_tail
from agesweep.links import DEFAULT_LOG_GROUP, batch_job_console_url, log_url
from agesweep.text import format_duration


def _param_or_tag(job: JobDescription, param: str, tag: str) -> str | None:
    value = job.parameters.get(param)
    if value in (None, "", "none"):
        value = job.tags.get(tag)
    return value or None


# agesweep's own tags; every other `agesweep:<name>` tag is an axis value of the job's point (agesweep.plan.point_tags)
_OWN_TAGS = frozenset({"run_id", "manifest_sha256", "age", "slice"})


def point_of(job: JobDescription) -> dict[str, str]:
    """The job's axis values, from its `agesweep:<axis>` tags ({} for a v1 run's job)."""
    return {k.removeprefix("agesweep:"): v for k, v in job.tags.items()
            if k.startswith("agesweep:") and k.removeprefix("agesweep:") not in _OWN_TAGS}


def _slice_of(job: JobDescription) -> str | None:
    """The patients the job trained: its bounds, or array child i's slice of them."""
    try:
        start, end = int(job.parameters["start_index"]), int(job.parameters["end_index"])
        size = int(job.parameters.get("slice_size") or 0)
    except (KeyError, ValueError):
        return job.tags.get("agesweep:slice")
    index = job.arrayProperties.index
    if index is not None and size > 0:
        child_start = start + index * size
        return f"{child_start}-{min(child_start + size, end)}"
    return f"{start}-{end}"


def _array_line(job: JobDescription, children: list[JobDescription]) -> list[str]:
    props = job.arrayProperties
    if not props.size:
        return []
    failed = [c for c in children if c.status == "FAILED"]
    if children:
        succeeded = sum(c.status == "SUCCEEDED" for c in children)
        lines = [f"Array job: {props.size} children, {len(failed)} failed, {succeeded} succeeded"]
    else:
        counts = props.statusSummary
        tally = f", {counts.get('FAILED', 0)} failed, {counts.get('SUCCEEDED', 0)} succeeded" if counts else ""
        lines = [f"Array job: {props.size} children{tally}"]
    reasons = classify(job, children).reasons if failed else []
    if reasons:
        lines.append("First reasons of the failed children:")
        lines += [f"  - {reason}" for reason in reasons]
    return lines


def _tail_lines(tail: list[str]) -> list[str]:
    return ["", "Last lines of the job's log:", *[f"  | {line}" for line in tail]] if tail else []


def _attempt_lines(job: JobDescription) -> list[str]:
    """Every attempt's reason, exit code and duration, when there was more than one."""
    if len(job.attempts) <= 1:
        return []
    lines = ["", "Attempts:"]
    for n, attempt in enumerate(job.attempts, start=1):
        code = attempt.container.exitCode
        took = format_duration(attempt.duration_ms / 1000) if attempt.duration_ms is not None else None
        extras = ", ".join(x for x in (f"exit {code}" if code is not None else "", took or "") if x)
        lines.append(f"  {n}. {attempt.statusReason or 'no reason'}" + (f" ({extras})" if extras else ""))
    return lines


def _job_lines(job: JobDescription, region: str) -> list[str]:
    job_id = job.jobId or ""
    lines = [
        "",
        f"Job: {job.jobName or ''} {job_id}",
        f"  {batch_job_console_url(job_id, region)}" if job_id else "",
        f"Job definition: {job.jobDefinition or 'unknown'}",
        f"Image: {job.container.image or 'unknown'}",
        f"Queue: {job.jobQueue or 'unknown'}",
    ]
    if job.parameters.get("input"):
        lines.append(f"Input: {job.parameters['input']}")
    if job.stoppedAt:
        lines.append(f"Stopped: {when(job.stoppedAt)}")
    return lines


def read_children(batch: Any, job: JobDescription) -> list[JobDescription]:
    """An array parent's children, described (none for a single job or without a client)."""
    if batch is None or not job.jobId or not job.arrayProperties.size or job.arrayProperties.index is not None:
        return []
    return [JobDescription.of(c) for c in aws.array_children(batch, job.jobId, job.arrayProperties.size)]


def silenced(job: JobDescription, children: list[JobDescription], on_demand_queue: str | None) -> str | None:
    """Why this failure needs no alert of its own, if it needs none: a cancelled job (the
    execution's ABORTED alert says what was cancelled) or a spot-first job the state machine is
    about to resubmit to on-demand (not a failure yet)."""
    if is_cancel(job.reason):
        return "cancelled"
    if on_demand_queue and job.jobQueue != on_demand_queue and classify(job, children).escalate:
        return "escalating to on-demand"
    return None


def batch_job_failed(
    event: Mapping[str, Any] | AlertEvent, *, log_group: str = DEFAULT_LOG_GROUP, region: str | None = None,
    batch: Any = None, logs: Any = None, on_demand_queue: str | None = None,
) -> Alert | None:
    """The alert for one "Batch Job State Change" event with status FAILED (None: no alert due)."""
    envelope = AlertEvent.of(event)
    job = JobDescription.of(envelope.detail)
    children = read_children(batch, job)
    if silenced(job, children, on_demand_queue):
        return None
    region = region or envelope.region
    run_id = _param_or_tag(job, "run_id", "agesweep:run_id")
    age = _param_or_tag(job, "age", "agesweep:age")
    slice_label = _slice_of(job)
    index = job.arrayProperties.index
    point = point_of(job)
    what = ", ".join([*(f"{k} {v}" for k, v in point.items()), *([f"age {age}"] if age else [])]) or "a job"
    lines = [
        f"A Batch job of run {run_id or '(unknown run)'} failed: {what}"
        + (f", patients {slice_label}" if slice_label else "") + ".",
        "",
        f"Run: {run_id or 'unknown (no run_id parameter or agesweep:run_id tag)'}",
        *([f"Point: {', '.join(f'{k} {v}' for k, v in point.items())}"] if point else []),
        *([f"Age: {age or 'unknown'}"] if age or not point else []),
    ]
    if slice_label:
        lines.append(f"Slice: {slice_label}" + (f" (array child {index})" if index is not None else ""))
    lines += _array_line(job, children)
    max_attempts = job.retryStrategy.attempts
    lines.append(f"Attempt: {len(job.attempts) or 1}" + (f" of {max_attempts}" if max_attempts else ""))
    lines.append(f"Reason: {job.reason or 'no reason given'}")
    exit_code = job.exit_code
    lines.append(f"Exit code: {exit_code if exit_code is not None else 'none (the container did not exit on its own)'}")
    failed_child = next((c for c in children if c.status == "FAILED" and c.log_stream), None)
    stream = job.log_stream or (failed_child.log_stream if failed_child else None)
    link = log_url(log_group, stream, region)
    lines.append(f"Log: {link}" if link else "Log: none (the job never started a container)")
    lines += _tail_lines(log_tail(logs, log_group, stream))
    lines += _attempt_lines(job) + _job_lines(job, region)
    unit = "point" if point else "age"
    lines += ["", f"The sweep goes on with the other {unit}s. When it finishes, its summary lists this {unit} and "
              f"runs/{run_id or '<run_id>'}/retry-manifest.yaml reruns it (a cancelled run writes none)."]
    subject = subject_line(f"agesweep job failed: {what}, run {run_id or 'unknown'}")
    return Alert(subject=subject, message="\n".join(lines) + "\n", run_id=run_id)
