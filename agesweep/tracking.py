"""Where a sweep stands, read from the AWS APIs (deployed stack or local mode's moto server alike).

The plan comes from the execution's history (the ValidateManifest state's output); the jobs
from Batch (ListJobs on the plan's queue, DescribeJobs for details), matched to the run by the
`run_id` job parameter so that two runs of the same manifest never mix.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED"})


@dataclass
class AgeProgress:
    """One age of a sweep: its (array) job and, for arrays, its children's status counts."""

    age: int
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

    def elapsed_s(self, now: float | None = None) -> float | None:
        if self.started_at is None:
            return None
        end = self.stopped_at if self.stopped_at is not None else (now or time.time())
        return max(0.0, end - self.started_at)

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
            return json.loads(details["output"])
    return None


def plan_from_history(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The validated plan, or None while ValidateManifest has not finished (or failed)."""
    return (state_output(events, "ValidateManifest") or {}).get("plan")


def collated_from_history(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """CollateResults' output ({total, succeeded, failed, ...}) once the run got that far."""
    return ((state_output(events, "CollateResults") or {}).get("collation") or {}).get("collated")


def _seconds(millis: int | None) -> float | None:
    return millis / 1000.0 if millis else None


def describe_jobs(batch: Any, job_ids: list[str]) -> list[dict[str, Any]]:
    """DescribeJobs in its batches of 100."""
    jobs: list[dict[str, Any]] = []
    for start in range(0, len(job_ids), 100):
        jobs.extend(batch.describe_jobs(jobs=job_ids[start : start + 100])["jobs"])
    return jobs


def list_run_jobs(batch: Any, plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's top-level jobs (single or array parents), described."""
    names = {item["job_name"] for item in plan["items"]}
    job_ids: list[str] = []
    for status in JOB_STATUSES:
        for page in batch.get_paginator("list_jobs").paginate(jobQueue=plan["job_queue"], jobStatus=status):
            job_ids.extend(
                summary["jobId"] for summary in page["jobSummaryList"]
                if summary["jobName"] in names and ":" not in summary["jobId"]
            )
    jobs = describe_jobs(batch, sorted(set(job_ids)))
    return [job for job in jobs if (job.get("parameters") or {}).get("run_id") == plan["run_id"]]


def age_progress(plan: dict[str, Any], jobs: list[dict[str, Any]]) -> list[AgeProgress]:
    """One row per plan item, filled from the newest job submitted for it."""
    newest: dict[str, dict[str, Any]] = {}
    for job in sorted(jobs, key=lambda j: j.get("createdAt", 0)):
        newest[job["jobName"]] = job
    rows: list[AgeProgress] = []
    for item in plan["items"]:
        row = AgeProgress(age=int(item["age"]), job_name=item["job_name"], array_size=int(item.get("array_size", 0)))
        job = newest.get(item["job_name"])
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
        rows.append(row)
    return rows


def totals(rows: list[AgeProgress]) -> Counter[str]:
    return Counter(row.status for row in rows)
