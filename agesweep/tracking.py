"""Where a sweep stands, read from the AWS APIs (deployed stack or local mode's moto server alike).

The plan comes from the execution's history (the ValidateManifest state's output, a
`contracts.Plan`); the jobs from Batch (ListJobs on the plan's queue, DescribeJobs for details),
matched to the run by the `run_id` job parameter so that two runs of the same manifest never mix.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from agesweep import aws
from agesweep.contracts import CollateOutput, Plan, PlanItem
from agesweep.points import point_label

JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED"})


@dataclass
class AgeProgress:
    """One item of a sweep (an age, or a point of named axes): its (array) job and, for arrays,
    its children's status counts."""

    age: int | None
    job_name: str
    array_size: int
    status: str = "NOT SUBMITTED"
    job_id: str | None = None
    attempts: int = 0
    created_at: float | None = None
    started_at: float | None = None
    stopped_at: float | None = None
    status_reason: str | None = None
    log_stream: str | None = None
    children: dict[str, int] = field(default_factory=dict)
    point: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, item: PlanItem, job: dict[str, Any] | None = None) -> AgeProgress:
        """The row of one plan item, filled from its described Batch job when it has one."""
        row = cls(age=item.age, job_name=item.job_name, array_size=item.array_size, point=dict(item.point))
        if job is not None:
            row.status = job["status"]
            row.job_id = job["jobId"]
            row.attempts = len(job.get("attempts") or [])
            row.created_at = _seconds(job.get("createdAt"))
            row.started_at = _seconds(job.get("startedAt"))
            row.stopped_at = _seconds(job.get("stoppedAt"))
            row.status_reason = job.get("statusReason")
            row.log_stream = (job.get("container") or {}).get("logStreamName")
            summary = (job.get("arrayProperties") or {}).get("statusSummary") or {}
            row.children = {status: count for status, count in summary.items() if count}
        return row

    def elapsed_s(self, now: float | None = None) -> float | None:
        if self.started_at is None:
            return None
        end = self.stopped_at if self.stopped_at is not None else (now or time.time())
        return max(0.0, end - self.started_at)

    @property
    def short(self) -> str:
        """A table cell: the bare age (`60`) of a v1 run, else the point in words."""
        return str(self.age) if not self.point and self.age is not None else self.label

    @property
    def label(self) -> str:
        """`age 60`, or the point in words (`variable t2m, window 2020-01-01_2020-01-30`)."""
        return point_label(self.point, self.age) or self.job_name

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "elapsed_s": self.elapsed_s()}


def execution_arn_for(state_machine_arn: str, run_id: str) -> str:
    """The execution ARN of a run: the run id is the execution name."""
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"


def history_events(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def state_output(events: list[dict[str, Any]], state: str) -> dict[str, Any] | None:
    """The output a Task state left, or None while it has not finished (or failed)."""
    for event in events:
        details = event.get("stateExitedEventDetails") or {}
        if event.get("type") == "TaskStateExited" and details.get("name") == state:
            output: dict[str, Any] = json.loads(details["output"])
            return output
    return None


def plan_from_history(events: list[dict[str, Any]], s3: Callable[[], Any] | None = None) -> Plan | None:
    """The validated plan, or None while ValidateManifest has not finished (or failed). A
    Distributed Map's items are read back from the stack bucket with the S3 client `s3` makes
    (asked for only then)."""
    from agesweep.collation.map_results import with_items  # deferred: only distributed runs need it

    state = (state_output(events, "ValidateManifest") or {}).get("plan")
    if state is None:
        return None
    plan = Plan.model_validate(state)
    if s3 is None or plan.map_mode != "DISTRIBUTED" or not plan.manifest.bucket:
        return plan
    return with_items(plan, s3(), plan.manifest.bucket)


def collated_from_history(events: list[dict[str, Any]]) -> CollateOutput | None:
    """CollateResults' output ({total, succeeded, failed, ...}) once the run got that far."""
    collated = ((state_output(events, "CollateResults") or {}).get("collation") or {}).get("collated")
    return None if collated is None else CollateOutput.model_validate(collated)


def _seconds(millis: int | None) -> float | None:
    return millis / 1000.0 if millis else None


def list_run_jobs(batch: Any, plan: Plan) -> list[dict[str, Any]]:
    """The run's top-level jobs (single or array parents), described."""
    names = {item.job_name for item in plan.items}
    listed = aws.list_jobs(batch, statuses=JOB_STATUSES, jobQueue=plan.job_queue)
    job_ids = [job_id for job_id, summary in listed.items() if summary["jobName"] in names and ":" not in job_id]
    jobs = aws.describe_jobs(batch, job_ids).values()
    return [job for job in jobs if (job.get("parameters") or {}).get("run_id") == plan.run_id]


def age_progress(plan: Plan, jobs: list[dict[str, Any]]) -> list[AgeProgress]:
    """One row per plan item, filled from the newest job submitted for it."""
    newest: dict[str, dict[str, Any]] = {}
    for job in sorted(jobs, key=lambda j: j.get("createdAt", 0)):
        newest[job["jobName"]] = job
    return [AgeProgress.of(item, newest.get(item.job_name)) for item in plan.items]


def totals(rows: list[AgeProgress]) -> Counter[str]:
    return Counter(row.status for row in rows)
