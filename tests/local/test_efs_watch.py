"""A manifest saved under <data>/manifests/ starts its run: the real WatchEfs handler on its (local,
shorter) schedule, through the S3 path, the real state machine and real training jobs."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agesweep.cli import app
from agesweep.manifest_loading import MAX_MANIFEST_BYTES
from agesweep.runs import run_id_for
from tests.local.conftest import write_manifest

INTERVAL_S = 0.5
KEY = "manifests/efs/team/efs-e2e.yaml"


@pytest.fixture
def watched(data_dir: Path) -> Iterator[Path]:
    folder = data_dir / "manifests"
    folder.mkdir(exist_ok=True)
    yield folder
    shutil.rmtree(folder)  # data_dir is shared by the session's tests


def _wait_for(predicate, timeout_s: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return value


def _executions(stack: Any) -> list[dict[str, Any]]:
    return list(stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)["executions"])


def _versions(stack: Any) -> list[dict[str, Any]]:
    return list(stack.client("s3").list_object_versions(Bucket=stack.bucket, Prefix=KEY).get("Versions", []))


def _finished(stack: Any, count: int) -> list[dict[str, Any]]:
    """The run of each of the first `count` uploaded versions, once every one has ended."""
    versions = _wait_for(lambda: len(_versions(stack)) >= count and _versions(stack))
    sfn = stack.client("stepfunctions")
    ended = []
    for version in versions:
        arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{run_id_for(stack.bucket, KEY, version['VersionId'])}"

        def done(arn: str = arn) -> dict[str, Any] | None:
            try:
                described = sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                return None
            return described if described["status"] != "RUNNING" else None

        ended.append(_wait_for(done))
    return ended


def test_a_manifest_saved_on_efs_starts_one_run_and_a_changed_one_another(make_stack, watched: Path, tmp_path: Path) -> None:
    stack = make_stack(schedule_interval_s=INTERVAL_S)
    s3 = stack.client("s3")
    target = watched / "team" / "efs-e2e.yaml"
    target.parent.mkdir()
    target.write_bytes(write_manifest(tmp_path / "m.yaml", [50], run_name="efs-e2e", epochs=1).read_bytes())
    for i in range(4):  # still being written: it changes between every two looks
        stack.scheduler.wait_ticks(1)
        with target.open("a", encoding="utf-8") as fh:
            fh.write(f"# still writing {i}\n")
        assert _versions(stack) == []

    (first,) = _finished(stack, 1)
    assert first["status"] == "SUCCEEDED", first
    run_id = first["name"]
    summary = json.loads(s3.get_object(Bucket=stack.bucket, Key=f"runs/{run_id}/summary.json")["Body"].read())
    assert summary["lineage"]["manifest"]["source"] == "efs:/data/manifests/team/efs-e2e.yaml"
    assert summary["succeeded"] == 1

    stack.scheduler.wait_ticks(10)  # the same file, ten more looks: nothing more
    assert len(_versions(stack)) == 1 and len(_executions(stack)) == 1

    listed = CliRunner().invoke(app, ["runs", "--stack", "agesweep-local"])
    assert listed.exit_code == 0, listed.stdout
    assert "/data/manifests/team/efs-e2e.yaml" in listed.stdout

    target.write_text(target.read_text(encoding="utf-8").replace("seed: 1", "seed: 2"), encoding="utf-8")
    runs = _finished(stack, 2)
    assert [r["status"] for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
    assert len(_executions(stack)) == 2


def test_unusable_files_on_efs_alert_once_and_start_nothing(make_stack, watched: Path) -> None:
    stack = make_stack(schedule_interval_s=INTERVAL_S)
    os.symlink(watched / "gone.yaml", watched / "dangling.yaml")
    (watched / "huge.json").write_bytes(b" " * (MAX_MANIFEST_BYTES + 1))
    notes = _wait_for(lambda: (n := stack.drain_notifications()) and n)
    stack.scheduler.wait_ticks(10)
    stack.wait_idle()
    notes += stack.drain_notifications()
    assert sorted(n["subject"] for n in notes) == [
        "agesweep: manifest on EFS not taken: dangling.yaml",
        "agesweep: manifest on EFS not taken: huge.json",
    ]
    assert _executions(stack) == []
    assert "Contents" not in stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix="manifests/")
