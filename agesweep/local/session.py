"""One local run, started the way AWS starts it: the manifest is put into the bucket."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agesweep import aws, tracking
from agesweep.contracts import CollateOutput, Plan
from agesweep.errors import ManifestInvalid
from agesweep.exit_codes import ExitCode
from agesweep.local.cloud import LocalCloud
from agesweep.manifest_loading import load_data
from agesweep.runs import run_id_for, run_prefix

_START_TIMEOUT_S = 60.0


class RunDidNotStart(RuntimeError):
    """The manifest was put, but no execution appeared (the start_run Lambda failed)."""


@dataclass
class Progress:
    """What a progress display needs at one moment."""

    run_id: str
    status: str
    plan: Plan | None
    rows: list[tracking.AgeProgress]
    started: float


@dataclass
class LocalRunResult:
    run_id: str
    execution_arn: str
    status: str
    error: str | None
    cause: str | None
    collated: CollateOutput | None
    plan: Plan | None
    rows: list[tracking.AgeProgress]
    notifications: list[dict[str, str]]
    run_dir: Path
    history_events: int
    wall_s: float
    artifacts: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.error == "ManifestRejected":
            return ExitCode.INVALID
        if self.status == "SUCCEEDED" and self.collated and not self.collated.failed:
            return ExitCode.OK
        return ExitCode.SOME_FAILED


def manifest_key(manifest: Path, raw: bytes) -> str:
    """manifests/<run_name>.yaml when the manifest names its run (so a downloaded retry-manifest.yaml
    runs as `<name>-retry-…`, not `retry-manifest-…`), else manifests/<file name>."""
    try:
        run_name = load_data(raw, manifest.name).get("run_name")
    except ManifestInvalid:
        run_name = None  # validation reports it once the run starts
    if isinstance(run_name, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", run_name):
        return f"manifests/{run_name}{manifest.suffix or '.yaml'}"
    return f"manifests/{manifest.name}"


def put_manifest(cloud: LocalCloud, manifest: Path, key: str | None = None) -> tuple[str, str]:
    """Upload the manifest under manifests/; return (key, run_id) of the version created."""
    raw = manifest.read_bytes()
    key = key or manifest_key(manifest, raw)
    version = cloud.client("s3").put_object(Bucket=cloud.bucket, Key=key, Body=raw)["VersionId"]
    return key, run_id_for(cloud.bucket, key, version)


def wait_for_execution(cloud: LocalCloud, execution_arn: str, timeout_s: float = _START_TIMEOUT_S) -> None:
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            sfn.describe_execution(executionArn=execution_arn)
            return
        except sfn.exceptions.ExecutionDoesNotExist:
            time.sleep(0.1)
    raise RunDidNotStart(
        f"no execution {execution_arn.rsplit(':', 1)[1]} started within {timeout_s:.0f} s; "
        f"see {cloud.lambda_log} for the start_run Lambda's log"
    )


class _Follower:
    """Polls a run cheaply: the plan is read once, job ids are listed until all are known."""

    def __init__(self, cloud: LocalCloud, run_id: str, execution_arn: str, started: float) -> None:
        self.sfn, self.batch, self.s3 = cloud.client("stepfunctions"), cloud.client("batch"), cloud.client("s3")
        self.run_id, self.execution_arn, self.started = run_id, execution_arn, started
        self.plan: Plan | None = None
        self.job_ids: list[str] = []

    def snapshot(self) -> Progress:
        status = self.sfn.describe_execution(executionArn=self.execution_arn)["status"]
        if self.plan is None:
            self.plan = tracking.plan_from_history(tracking.history_events(self.sfn, self.execution_arn), lambda: self.s3)
        rows: list[tracking.AgeProgress] = []
        if self.plan is not None:
            if len(self.job_ids) < len(self.plan.items):
                jobs = tracking.list_run_jobs(self.batch, self.plan)
                self.job_ids = [job["jobId"] for job in jobs]
            else:
                jobs = list(aws.describe_jobs(self.batch, self.job_ids).values())
            rows = tracking.age_progress(self.plan, jobs)
        return Progress(run_id=self.run_id, status=status, plan=self.plan, rows=rows, started=self.started)


def download_run_artifacts(cloud: LocalCloud, run_id: str, run_dir: Path) -> list[Path]:
    """Copy runs/<run_id>/ from the bucket into the local run folder."""
    s3 = cloud.client("s3")
    prefix = run_prefix(run_id)
    paths: list[Path] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=cloud.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            target = run_dir / obj["Key"][len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(cloud.bucket, obj["Key"], str(target))
            paths.append(target)
    return paths


def save_run(cloud: LocalCloud, run_id: str) -> tuple[Path, list[Path]]:
    """The run's folder <workdir>/runs/<run_id>/ with what the run wrote to the bucket."""
    run_dir = cloud.workdir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, download_run_artifacts(cloud, run_id, run_dir)


def run_manifest(
    cloud: LocalCloud,
    manifest: Path,
    on_progress: Callable[[Progress], None] | None = None,
    poll_s: float = 1.0,
    key: str | None = None,
) -> LocalRunResult:
    """Put the manifest into the bucket, follow the execution it starts, collect what it wrote."""
    started = time.time()
    key, run_id = put_manifest(cloud, manifest, key)
    sfn = cloud.client("stepfunctions")
    execution_arn = tracking.execution_arn_for(cloud.state_machine_arn, run_id)
    wait_for_execution(cloud, execution_arn)
    follower = _Follower(cloud, run_id, execution_arn, started)
    while True:
        progress = follower.snapshot()
        if on_progress is not None:
            on_progress(progress)
        if progress.status != "RUNNING":
            break
        time.sleep(poll_s)
    description = sfn.describe_execution(executionArn=execution_arn)
    history = tracking.history_events(sfn, execution_arn)
    cloud.wait_idle()  # alert deliveries (execution/job status events) run in the background
    run_dir, artifacts = save_run(cloud, run_id)
    notifications = cloud.drain_notifications()
    with (run_dir / "notifications.jsonl").open("a", encoding="utf-8") as out:
        for note in notifications:
            out.write(json.dumps(note) + "\n")
    collated = tracking.collated_from_history(history)
    return LocalRunResult(
        run_id=run_id,
        execution_arn=execution_arn,
        status=description["status"],
        error=description.get("error"),
        cause=description.get("cause"),
        collated=collated,
        plan=progress.plan,
        rows=progress.rows,
        notifications=notifications,
        run_dir=run_dir,
        history_events=len(history),
        wall_s=time.time() - started,
        artifacts=artifacts,
    )

