"""Cancelling a 40-age run sends exactly one message: the ABORTED alert, naming what was cut short.

The jobs run a trivial long command (a sleep) instead of training, so 40 ages start in seconds on a
2-core machine; what is under test is the alerting, not the trainer."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agesweep import tracking
from agesweep.cli import app
from agesweep.local.session import put_manifest, wait_for_execution
from tests.local.conftest import write_manifest

AGES = list(range(40, 80))


def _wait_for(predicate: Any, timeout_s: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)
    return value


def test_cancelling_a_40_age_run_sends_one_message_the_aborted_alert(
    make_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack()
    sleep = [sys.executable, "-c", "import time; print('epoch 0', flush=True); time.sleep(600)"]
    monkeypatch.setattr(stack.batch, "_job_command", lambda job: sleep)
    manifest = write_manifest(tmp_path / "forty.yaml", AGES, run_name="forty")
    _, run_id = put_manifest(stack, manifest)
    execution_arn = tracking.execution_arn_for(stack.state_machine_arn, run_id)
    wait_for_execution(stack, execution_arn)
    batch = stack.client("batch")

    def running_jobs() -> list[dict[str, Any]]:
        listed = batch.list_jobs(jobQueue=stack.job_queue_arn, jobStatus="RUNNING")["jobSummaryList"]
        return listed if len(listed) >= 2 else []

    _wait_for(running_jobs)  # both job slots busy, more ages queued or waiting in the Map

    cancelled = CliRunner().invoke(app, ["cancel", run_id, "--stack", "agesweep-local", "--yes"])
    assert cancelled.exit_code == 0, cancelled.output
    sfn = stack.client("stepfunctions")
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "ABORTED"

    def all_jobs_ended() -> bool:
        jobs = [j for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
                for j in batch.list_jobs(jobQueue=stack.job_queue_arn, jobStatus=status)["jobSummaryList"]]
        return not jobs

    _wait_for(all_jobs_ended)
    terminated = batch.list_jobs(jobQueue=stack.job_queue_arn, jobStatus="FAILED")["jobSummaryList"]
    assert len(terminated) >= 2
    time.sleep(2.0)  # job status events of the terminated jobs are delivered in the background
    stack.wait_idle(timeout_s=60)
    messages = stack.drain_notifications()
    time.sleep(3.0)  # and nothing comes late
    stack.wait_idle(timeout_s=60)
    messages += stack.drain_notifications()

    assert len(messages) == 1, [m["subject"] for m in messages]
    alert = messages[0]
    assert "aborted" in alert["subject"].lower() and run_id in alert["message"]
    assert "Status: ABORTED" in alert["message"]
    cut = [line for line in alert["message"].splitlines() if line.startswith("Cancelled:")]
    assert cut, alert["message"]
    ages_named = cut[0].partition("(")[2].partition(")")[0].split(", ")
    terminated_ages = {batch.describe_jobs(jobs=[j["jobId"]])["jobs"][0]["parameters"]["age"] for j in terminated}
    assert terminated_ages <= set(ages_named) <= {str(age) for age in AGES}, (cut, terminated_ages)
