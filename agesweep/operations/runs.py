"""`agesweep runs`: the stack's newest runs, with their (age, slice) counts once collated."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from agesweep.contracts import SkippedUpload, Summary
from agesweep.operations.deployment import DeployedStack
from agesweep.operations.errors import aws_errors
from agesweep.operations.executions import epoch
from agesweep.runs import SKIPPED_PREFIX, run_prefix

SKIPPED = "SKIPPED"  # an upload of identical bytes: no execution


@dataclass
class RunSummary:
    run_id: str
    status: str
    started_at: float | None
    stopped_at: float | None
    total: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    source: str | None = None  # where the manifest was saved before S3 (the EFS watcher's path), once collated
    identical_to: str | None = None  # status SKIPPED: an upload of that run's bytes started nothing

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.status == SKIPPED:
            return None
        return (self.stopped_at or time.time()) - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duration_s": self.duration_s}


def read_summary(stack: DeployedStack, run_id: str) -> Summary | None:
    """runs/<run_id>/summary.json from the stack bucket, None before collation (or without one)."""
    return stack.read_model(f"{run_prefix(run_id)}summary.json", Summary)


def list_runs(stack: DeployedStack, limit: int = 20) -> list[RunSummary]:
    """The newest executions of the stack's state machine, with (age, slice) counts once collated,
    and the uploads that started nothing (SKIPPED, identical to an earlier run)."""
    sfn = stack.client("stepfunctions")
    executions: list[dict[str, Any]] = []
    with aws_errors():
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=stack.state_machine_arn, PaginationConfig={"MaxItems": limit, "PageSize": min(limit, 100)}
        ):
            executions.extend(page["executions"])
    executions.sort(key=lambda e: epoch(e.get("startDate")) or 0.0, reverse=True)
    runs = []
    for execution in executions[:limit]:
        run = RunSummary(execution["name"], execution["status"], epoch(execution.get("startDate")), epoch(execution.get("stopDate")))
        if run.status != "RUNNING":
            summary = read_summary(stack, run.run_id)
            if summary is not None:
                run.total, run.succeeded, run.failed = summary.total, summary.succeeded, summary.failed
                run.source = summary.lineage.manifest.source
        runs.append(run)
    runs.extend(skipped_uploads(stack, limit))
    runs.sort(key=lambda r: r.started_at or 0.0, reverse=True)
    return runs[:limit]


def skipped_uploads(stack: DeployedStack, limit: int) -> list[RunSummary]:
    """The newest manifest versions that started nothing (identical bytes; start_run's skipped/ records)."""
    s3 = stack.client("s3")
    objects: list[dict[str, Any]] = []
    with aws_errors():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=SKIPPED_PREFIX):
            objects.extend(page.get("Contents", []))
        objects.sort(key=lambda o: o["LastModified"], reverse=True)
        listed = []
        for obj in objects[:limit]:
            record = SkippedUpload.model_validate_json(s3.get_object(Bucket=stack.bucket, Key=obj["Key"])["Body"].read())
            at = epoch(obj["LastModified"])
            listed.append(RunSummary(record.run_id, SKIPPED, at, at, identical_to=record.identical_to))
    return listed
