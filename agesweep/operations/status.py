"""`agesweep status` / `watch`: one snapshot of a run — a row per age, totals, ETA and stuck jobs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from agesweep import tracking
from agesweep.contracts import CollateOutput
from agesweep.exit_codes import ExitCode
from agesweep.joblogs import log_tail
from agesweep.links import log_url
from agesweep.operations.deployment import DeployedStack
from agesweep.operations.executions import Execution, Rejection, RunJobs, describe_run, run_jobs
from agesweep.operations.stuck_jobs import (
    DEFAULT_STUCK_AFTER_S,
    ComputeEnvironment,
    StuckJob,
    compute_environments,
    ec2_vcpu_quotas,
    instance_type_limits,
    requested_resources,
    runnable_since,
    stuck_causes,
)


@dataclass
class RunStatus:
    """Where one run stands: the execution, one row per age, totals, ETA and stuck jobs."""

    run_id: str
    execution_arn: str
    status: str
    started_at: float | None
    stopped_at: float | None
    error: str | None
    cause: str | None
    region: str
    log_group: str
    max_concurrency: int | None
    rows: list[tracking.AgeProgress]
    counts: dict[str, int]
    eta_s: float | None
    stuck: list[StuckJob] = field(default_factory=list)
    compute_environments: list[ComputeEnvironment] = field(default_factory=list)
    collated: CollateOutput | None = None
    rejection: Rejection | None = None  # the manifest's problems, when ValidateManifest rejected it
    log_tails: dict[str, list[str]] = field(default_factory=dict)  # failed job id → its log's last lines

    @property
    def finished(self) -> bool:
        return self.status != "RUNNING"

    @property
    def exit_code(self) -> ExitCode:
        """0 succeeded with no failed age, 1 failed/aborted/timed out or an age failed, 2 the manifest
        was rejected (as `agesweep local` and `validate` exit for it), 3 running."""
        if not self.finished:
            return ExitCode.RUNNING
        if self.rejection is not None:
            return ExitCode.INVALID
        if self.status == "SUCCEEDED" and not self.counts.get("FAILED") and not (self.collated and self.collated.failed):
            return ExitCode.OK
        return ExitCode.SOME_FAILED

    def elapsed_s(self, now: float | None = None) -> float | None:
        if self.started_at is None:
            return None
        return (self.stopped_at or now or time.time()) - self.started_at

    def log_url(self, row: tracking.AgeProgress) -> str | None:
        return log_url(self.log_group, row.log_stream, self.region)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "execution_arn": self.execution_arn,
            "status": self.status,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "elapsed_s": self.elapsed_s(),
            "error": self.error,
            "cause": self.cause,
            "exit_code": self.exit_code,
            "counts": self.counts,
            "eta_s": self.eta_s,
            "ages": [
                {**row.to_dict(), "log_url": self.log_url(row), "log_tail": self.log_tails.get(row.job_id or "", [])}
                for row in self.rows
            ],
            "stuck": [asdict(job) for job in self.stuck],
            "compute_environments": [asdict(ce) for ce in self.compute_environments],
            "collated": self.collated.model_dump(mode="json") if self.collated else None,
            "rejection": asdict(self.rejection) if self.rejection else None,
        }


def eta_seconds(rows: list[tracking.AgeProgress], concurrency: int | None) -> float | None:
    """mean duration of the finished ages × ages left ÷ ages that run at once; None until one finished."""
    durations = [row.elapsed_s() for row in rows if row.status in tracking.TERMINAL_STATUSES and row.stopped_at]
    finished = [d for d in durations if d is not None]
    remaining = sum(row.status not in tracking.TERMINAL_STATUSES for row in rows)
    if remaining == 0:
        return 0.0
    if not finished:
        return None
    at_once = max(1, min(concurrency or remaining, remaining))
    return sum(finished) / len(finished) * math.ceil(remaining / at_once)


ACTIVE_STATUSES = frozenset({"STARTING", "RUNNING"})


def parallelism_now(rows: list[tracking.AgeProgress], max_concurrency: int | None) -> int:
    """The ages running at once right now (at least 1, at most the manifest's max_concurrency).

    What the ETA divides by: the Map may allow 40 at once, but the compute environment decides
    how many really run (a queue of RUNNABLE jobs does not shorten the run).
    """
    running = sum(row.status in ACTIVE_STATUSES for row in rows)
    return max(1, min(running, max_concurrency or running))


def _snapshot(stack: DeployedStack, execution: Execution, found: RunJobs) -> RunStatus:
    max_concurrency = found.plan.max_concurrency if found.plan else None
    return RunStatus(
        run_id=execution.run_id,
        execution_arn=execution.arn,
        status=execution.status,
        started_at=execution.started_at,
        stopped_at=execution.stopped_at,
        error=execution.error,
        cause=execution.cause,
        region=stack.region,
        log_group=stack.log_group,
        max_concurrency=max_concurrency,
        rows=found.rows,
        counts=dict(tracking.totals(found.rows)),
        eta_s=eta_seconds(found.rows, parallelism_now(found.rows, max_concurrency)) if found.rows and execution.running else None,
        collated=found.collated,
        rejection=found.rejection,
    )


def _waiting(found: RunJobs, stuck_after_s: float, now: float) -> list[tuple[tracking.AgeProgress, dict[str, Any], float]]:
    """(row, job, seconds waiting) of each age whose job (or a child) has been RUNNABLE too long."""
    by_id = {job["jobId"]: job for job in found.jobs}
    waiting = []
    for row in found.rows:
        job = by_id.get(row.job_id or "")
        if job is None or not (row.status == "RUNNABLE" or row.children.get("RUNNABLE")):
            continue
        since = runnable_since(job)
        if since is not None and now - since >= stuck_after_s:
            waiting.append((row, job, now - since))
    return waiting


def _diagnose_stuck(stack: DeployedStack, status: RunStatus, found: RunJobs, stuck_after_s: float, now: float) -> None:
    """Fill in the stuck jobs and the queue's compute environments (only when some job waits too long)."""
    waiting = _waiting(found, stuck_after_s, now)
    if not waiting:
        return
    status.compute_environments = compute_environments(stack, (found.plan.job_queue if found.plan else "") or stack.job_queue_arn)
    types = sorted({t for ce in status.compute_environments for t in ce.instance_types})
    limits = instance_type_limits(stack, types)
    quotas = ec2_vcpu_quotas(stack) if any(ce.managed for ce in status.compute_environments) else {}
    items = {item.job_name: item for item in (found.plan.items if found.plan else [])}
    for row, job, waited in waiting:
        vcpus, memory = requested_resources(items.get(row.job_name), job)
        status.stuck.append(StuckJob(row.age, row.job_id, round(waited, 1), vcpus, memory,
                                     stuck_causes(vcpus, memory, status.compute_environments, limits, quotas), row.label))


def failed_log_tails(stack: DeployedStack, rows: list[tracking.AgeProgress]) -> dict[str, list[str]]:
    """The last lines of each failed job's log (its reason in its own words; best effort)."""
    failed = [row for row in rows if row.status == "FAILED" and row.job_id and row.log_stream]
    if not failed:
        return {}
    logs = stack.client("logs")
    tails = {row.job_id or "": log_tail(logs, stack.log_group, row.log_stream) for row in failed}
    return {job_id: lines for job_id, lines in tails.items() if lines}


def run_status(stack: DeployedStack, run: str, stuck_after_s: float = DEFAULT_STUCK_AFTER_S, now: float | None = None) -> RunStatus:
    """One snapshot of a run, from the execution history and Batch (agesweep.tracking)."""
    now = now or time.time()
    execution = describe_run(stack, run)
    found = run_jobs(stack, execution)
    status = _snapshot(stack, execution, found)
    status.log_tails = failed_log_tails(stack, status.rows)
    if not status.finished:
        _diagnose_stuck(stack, status, found, stuck_after_s, now)
    return status


def watch_run(
    stack: DeployedStack,
    run: str,
    interval_s: float = 5.0,
    stuck_after_s: float = DEFAULT_STUCK_AFTER_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[RunStatus]:
    """Snapshots until the execution ends (the last one is final)."""
    while True:
        status = run_status(stack, run, stuck_after_s)
        yield status
        if status.finished:
            return
        sleep(interval_s)
