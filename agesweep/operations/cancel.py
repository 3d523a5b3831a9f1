"""`agesweep cancel`: stop a run's execution, then terminate its unfinished Batch jobs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agesweep import tracking
from agesweep.operations.deployment import DeployedStack
from agesweep.operations.errors import aws_errors
from agesweep.operations.executions import Execution, describe_run, run_jobs

DEFAULT_REASON = "Cancelled by agesweep cancel"


@dataclass
class TerminatedJob:
    age: int | None
    job_id: str
    status: str  # before the cancel
    label: str = ""  # the point in words (`age 60`, `variable t2m, window ...`)


@dataclass
class CancelResult:
    run_id: str
    execution_status: str  # before the cancel
    stopped: bool
    terminated: list[TerminatedJob] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unfinished_jobs(stack: DeployedStack, run: str) -> tuple[Execution, list[tracking.AgeProgress]]:
    """The execution and the run's jobs that have not finished (what cancel would stop)."""
    execution = describe_run(stack, run)
    rows = run_jobs(stack, execution).rows
    return execution, [row for row in rows if row.job_id and row.status not in tracking.TERMINAL_STATUSES]


def cancel_run(stack: DeployedStack, run: str, reason: str = DEFAULT_REASON) -> CancelResult:
    """StopExecution (so no further age is submitted), then TerminateJob for every unfinished job.

    TerminateJob on an array parent terminates its children. The jobs are listed once more after
    the first pass, to catch a SubmitJob that was in flight when the execution stopped.
    """
    execution, _ = unfinished_jobs(stack, run)
    result = CancelResult(execution.run_id, execution.status, stopped=False)
    with aws_errors():
        if execution.running:
            stack.client("stepfunctions").stop_execution(executionArn=execution.arn, error="agesweep.Cancelled", cause=reason)
            result.stopped = True
        done: set[str] = set()
        for _ in range(2):
            _, rows = unfinished_jobs(stack, run)
            for row in rows:
                job_id = str(row.job_id)
                if job_id in done:
                    continue
                stack.client("batch").terminate_job(jobId=job_id, reason=reason[:1024])
                done.add(job_id)
                result.terminated.append(TerminatedJob(row.age, job_id, row.status, row.label))
    return result
