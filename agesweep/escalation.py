"""Why a Batch job failed, in the terms the state machine and the alerts act on.

Only a lost host (status reason ``Host EC2*``: a spot reclaim, or an instance that went away)
escalates an item from the spot-first queue to the on-demand queue; an application exit, a
timeout or a cancellation never does. A single job escalates when its final reason is a host
loss; an array job when every failed child was lost to its host (finished children skip
themselves on the rerun: the trainer exits 0 at once when its ``_SUCCESS_<s>_<e>`` marker exists).

Pure: the ClassifyFailure Lambda and the alert formatter read the jobs and pass them in.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from typing import Any

from agesweep import aws
from agesweep.batch_job import JobDescription
from agesweep.contracts import ClassifyInput, Escalation

HOST_LOSS = "Host EC2*"
# How a stop by a person reads in a job's status reason: `agesweep cancel` (its default reason,
# or "<that>: <their words>"), and Step Functions terminating a .sync job on StopExecution.
CANCEL_PATTERNS = ("Cancelled by agesweep cancel*", "*Step Functions*", "*StopExecution*", "Array job terminated*")
MAX_REASONS = 3


def is_host_loss(reason: str | None) -> bool:
    return bool(reason) and fnmatch.fnmatchcase(str(reason), HOST_LOSS)


def is_cancel(reason: str | None) -> bool:
    return bool(reason) and any(fnmatch.fnmatchcase(str(reason), p) for p in CANCEL_PATTERNS)


def host_losses(job: JobDescription) -> int:
    """How many of the job's attempts ended because their host went away."""
    return sum(is_host_loss(a.statusReason) for a in job.attempts)


def job_of_cause(cause: str | None) -> JobDescription | None:
    """The failed job's description from a Catch's Cause (JSON), None for an API error text."""
    try:
        parsed = json.loads(cause or "")
    except ValueError:
        return None
    if isinstance(parsed, dict) and ("JobId" in parsed or "jobId" in parsed):
        return JobDescription.of(parsed)
    return None


def first_reasons(children: Iterable[JobDescription], limit: int = MAX_REASONS) -> list[str]:
    """The distinct reasons of the failed children, most common first, with their counts."""
    counts: dict[str, int] = {}
    for child in children:
        reason = child.reason or "no reason given"
        counts[reason] = counts.get(reason, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [f"{reason} ({n} child{'ren' if n != 1 else ''})" if n > 1 else reason for reason, n in ranked]


def classify(job: JobDescription | None, children: Sequence[JobDescription] = ()) -> Escalation:
    """The verdict on one failed submission (the job, and its children when it is an array job)."""
    if job is None:
        return Escalation(escalate=False, reason="not a Batch job failure (the submission itself failed)")
    failed = [c for c in children if c.status == "FAILED"]
    reclaims = host_losses(job) + sum(host_losses(c) for c in children)
    if children:
        reasons = first_reasons(failed)
        lost = [c for c in failed if is_host_loss(c.reason)]
        escalate = bool(failed) and len(lost) == len(failed)
        reason = reasons[0] if reasons else (job.reason or "array job failed")
    else:
        reasons = [job.reason] if job.reason else []
        escalate = is_host_loss(job.reason)
        reason = job.reason or "no reason given"
    if is_cancel(job.reason):
        escalate = False
    return Escalation(
        escalate=escalate, reason=reason, reclaims=reclaims, job_id=job.jobId,
        children=len(children), failed_children=len(failed), reasons=reasons,
    )


def classify_failure(event: ClassifyInput, batch: Any) -> Escalation:
    """The ClassifyFailure Lambda's work: read the failed job's children (an array job), then classify."""
    job = job_of_cause(event.error.Cause)
    children: list[JobDescription] = []
    if job is not None and job.jobId and event.array_size >= 2:
        children = [JobDescription.of(c) for c in aws.array_children(batch, job.jobId, event.array_size)]
    return classify(job, children)
