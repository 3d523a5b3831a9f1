"""One run = one Step Functions execution: looking it up, and reading its plan and Batch jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from agesweep import aws, tracking
from agesweep.alerts.common import loads_json
from agesweep.alerts.history import failure_from_history
from agesweep.contracts import CollateOutput, Plan
from agesweep.operations.deployment import DeployedStack
from agesweep.operations.errors import RunNotFound, aws_errors


def epoch(value: Any) -> float | None:
    """boto3 datetimes (and moto's) → epoch seconds."""
    if value is None:
        return None
    return float(value.timestamp()) if hasattr(value, "timestamp") else float(value)


@dataclass
class Execution:
    """DescribeExecution of a run, the members the operator commands read."""

    run_id: str  # the execution name
    arn: str
    status: str
    started_at: float | None = None
    stopped_at: float | None = None
    error: str | None = None
    cause: str | None = None

    @classmethod
    def of(cls, description: dict[str, Any]) -> Execution:
        return cls(
            run_id=description["name"],
            arn=description["executionArn"],
            status=description["status"],
            started_at=epoch(description.get("startDate")),
            stopped_at=epoch(description.get("stopDate")),
            error=description.get("error"),
            cause=description.get("cause"),
        )

    @property
    def running(self) -> bool:
        return self.status == "RUNNING"


def describe_run(stack: DeployedStack, run: str) -> Execution:
    """DescribeExecution of a run; RunNotFound when this stack's state machine never ran it."""
    sfn = stack.client("stepfunctions")
    with aws_errors():
        try:
            return Execution.of(sfn.describe_execution(executionArn=stack.execution_arn(run)))
        except ClientError as exc:
            if aws.error_code(exc) in {"ExecutionDoesNotExist", "InvalidArn"}:
                raise RunNotFound(
                    f"no run {run!r} in stack {stack.name!r} (list them with `agesweep runs --stack {stack.name}`)"
                ) from exc
            raise


@dataclass
class RunJobs:
    """What the execution history and Batch say about a run's jobs."""

    plan: Plan | None  # None until ValidateManifest has finished (or when it rejected the manifest)
    jobs: list[dict[str, Any]]  # the run's top-level Batch jobs, described
    rows: list[tracking.AgeProgress]  # one per plan item
    collated: CollateOutput | None  # CollateResults' output once the run got that far
    rejection: Rejection | None = None  # why ValidateManifest rejected the manifest, when it did


@dataclass
class Rejection:
    """ValidateManifest's failure: the domain error (ManifestInvalid, InputMissing, PreflightFailed)
    and every problem it listed, one per line (the Lambda error's errorMessage)."""

    error: str
    problems: list[str]


REJECTED = "ManifestRejected"  # the ASL's Fail state for a manifest ValidateManifest refused


def rejection_from_history(history: list[dict[str, Any]]) -> Rejection | None:
    """The problems behind a ManifestRejected execution, read from the failed ValidateManifest task."""
    found = failure_from_history(history)
    if found.error != REJECTED:
        return None
    cause = loads_json(found.step_cause)
    if isinstance(cause, dict) and ("errorMessage" in cause or "errorType" in cause):
        message = str(cause.get("errorMessage") or "")
        problems = [line.strip() for line in message.splitlines() if line.strip()]
        return Rejection(str(cause.get("errorType") or found.step_error or REJECTED), problems)
    text = found.step_cause or found.cause or ""
    return Rejection(found.step_error or REJECTED, [line.strip() for line in text.splitlines() if line.strip()])


def run_jobs(stack: DeployedStack, execution: Execution) -> RunJobs:
    """The run's plan (from the history), its jobs (from Batch) and one row per age."""
    with aws_errors():
        history = tracking.history_events(stack.client("stepfunctions"), execution.arn)
        plan = tracking.plan_from_history(history, lambda: stack.client("s3"))
        jobs = tracking.list_run_jobs(stack.client("batch"), plan) if plan else []
    rows = tracking.age_progress(plan, jobs) if plan else []
    rejection = rejection_from_history(history) if execution.error == REJECTED else None
    return RunJobs(plan, jobs, rows, tracking.collated_from_history(history), rejection)
