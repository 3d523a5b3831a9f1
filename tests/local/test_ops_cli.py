"""The operator CLI against the real stack on local mode's moto server (found by `--stack agesweep-local`).

Each test starts one LocalCloud and drives it only through `agesweep submit/status/watch/runs/
retry/cancel/logs`, the way an operator would drive a deployed stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner, Result

from agesweep.cli import app
from agesweep.local.cloud import SimulatedFailure
from agesweep.operations.deployment import discover_stack
from agesweep.operations.executions import describe_run
from agesweep.operations.status import RunStatus, run_status
from tests.local.conftest import write_manifest

STACK = ["--stack", "agesweep-local"]


def cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def _json(result: Result) -> dict:
    try:
        return json.loads(result.stdout)
    except ValueError as exc:
        raise AssertionError(f"not one JSON document on stdout: {exc}\n{result.stdout[-3000:]}") from None


def _wait_for(predicate, timeout_s: float = 60.0, poll_s: float = 0.3):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(poll_s)


def test_submit_watch_logs_runs_and_retry_of_a_failed_age(make_stack, tmp_path: Path) -> None:
    stack = make_stack(simulated_failures=[SimulatedFailure(age=51)])
    manifest = write_manifest(tmp_path / "ops.yaml", [50, 51], run_name="ops", epochs=2)

    # submit: validated, uploaded, the run id and execution ARN printed
    first = cli("submit", str(manifest), *STACK, "--json")
    assert first.exit_code == 0, first.output
    submitted = _json(first)
    run_id = submitted["run_id"]
    assert run_id.startswith("ops-") and submitted["uploaded"] is True
    assert submitted["execution_arn"].endswith(f":execution:agesweep-local-SweepStateMachine:{run_id}")
    assert submitted["key"] == "manifests/ops.yaml"
    head = stack.client("s3").head_object(Bucket=stack.bucket, Key="manifests/ops.yaml")
    assert head["Metadata"] == {"sha256": submitted["sha256"], "source": "file:ops.yaml"}

    # the same manifest again: no new version, no new run
    again = cli("submit", str(manifest), *STACK)
    assert again.exit_code == 0, again.output
    assert run_id in again.stdout and "already holds these bytes" in again.stdout
    executions = stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == [run_id]

    # watch until it ends: each age's changes, then the table with the failed age and its reason
    watched = cli("watch", run_id, *STACK, "--interval", "0.3")
    assert watched.exit_code == 1, watched.output
    assert "age 51: " in watched.stdout and "→ FAILED (Essential container in task exited)" in watched.stdout
    assert "age 50: " in watched.stdout and "→ SUCCEEDED" in watched.stdout
    assert "1 of 2 (age, slice) pairs succeeded, 1 failed" in watched.stdout
    assert f"agesweep retry {run_id}" in watched.stdout

    status = cli("status", run_id, *STACK, "--json")
    assert status.exit_code == 1
    snapshot = _json(status)
    assert snapshot["status"] == "FAILED" and snapshot["error"] == "ToleranceExceeded"
    assert snapshot["counts"] == {"SUCCEEDED": 1, "FAILED": 1}
    by_age = {row["age"]: row for row in snapshot["ages"]}
    assert (by_age[50]["status"], by_age[51]["status"], by_age[51]["attempts"]) == ("SUCCEEDED", "FAILED", 1)
    assert by_age[51]["log_url"].startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/home")
    assert snapshot["collated"]["failed"] == 1

    # logs: the failed job's own output, from CloudWatch Logs
    failed_log = cli("logs", run_id, *STACK, "--age", "51")
    assert failed_log.exit_code == 0, failed_log.output
    assert "simulated application error for age 51" in failed_log.stdout
    assert "attempt 1" in failed_log.stderr
    trained_log = cli("logs", run_id, *STACK, "--age", "50", "--timestamps")
    assert trained_log.exit_code == 0 and trained_log.stdout.strip()
    assert "simulated" not in trained_log.stdout
    assert cli("logs", run_id, *STACK, "--age", "49").exit_code == 2

    # runs: outcome and counts from the collated summary
    listed = cli("runs", *STACK, "--json")
    assert listed.exit_code == 0
    assert [(r["run_id"], r["status"], r["succeeded"], r["failed"]) for r in _json(listed)] == [(run_id, "FAILED", 1, 1)]
    assert run_id in cli("runs", *STACK).stdout

    # retry: only age 51, as a new run; retrying twice starts one run
    stack.simulated_failures.clear()
    retried = cli("retry", run_id, *STACK, "--json")
    assert retried.exit_code == 0, retried.output
    (retry_sub,) = _json(retried)["submitted"]
    assert retry_sub["key"] == "manifests/ops-retry.yaml" and retry_sub["source"] == f"retry:{run_id}"
    twice = _json(cli("retry", run_id, *STACK, "--json"))["submitted"]
    assert [(s["run_id"], s["uploaded"]) for s in twice] == [(retry_sub["run_id"], False)]
    rerun = cli("watch", retry_sub["run_id"], *STACK, "--interval", "0.3", "--json")
    assert rerun.exit_code == 0, rerun.output
    final = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert [(row["age"], row["status"]) for row in final["ages"]] == [(51, "SUCCEEDED")]
    nothing = cli("retry", retry_sub["run_id"], *STACK)
    assert nothing.exit_code == 0 and "nothing to retry" in nothing.stdout

    # clear one-line errors, no traceback
    unknown_run = cli("status", "no-such-run", *STACK)
    assert unknown_run.exit_code == 2 and "no run 'no-such-run'" in unknown_run.stderr
    unknown_stack = cli("runs", "--stack", "nope")
    assert unknown_stack.exit_code == 2 and "stack 'nope' not found in us-east-1" in unknown_stack.stderr
    wrong_region = cli("runs", *STACK, "--region", "eu-west-1")
    assert wrong_region.exit_code == 2 and "not found in eu-west-1" in wrong_region.stderr
    for result in (unknown_run, unknown_stack, wrong_region):
        assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_cancel_a_running_sweep_after_flagging_its_runnable_job(make_stack, tmp_path: Path) -> None:
    stack = make_stack()  # 2 job slots: of 3 ages, one waits in RUNNABLE
    efs_mount = tmp_path / "efs"  # where this machine mounts the file system jobs see as /data
    (efs_mount / "manifests").mkdir(parents=True)
    write_manifest(efs_mount / "manifests" / "long.yaml", [50, 51, 52], run_name="long", epochs=100_000)
    started = cli("submit", "--efs", "/data/manifests/long.yaml", "--efs-mount", str(efs_mount), *STACK, "--json")
    assert started.exit_code == 0, started.output
    run_id = _json(started)["run_id"]
    head = stack.client("s3").head_object(Bucket=stack.bucket, Key="manifests/long.yaml")
    assert head["Metadata"]["source"] == "efs:/data/manifests/long.yaml"
    found = discover_stack("agesweep-local")

    def two_running() -> RunStatus | None:
        snapshot = run_status(found, run_id)
        return snapshot if snapshot.counts == {"RUNNING": 2, "RUNNABLE": 1} else None

    snapshot = _wait_for(two_running)
    waiting_age = next(row.age for row in snapshot.rows if row.status == "RUNNABLE")
    running_age = next(row.age for row in snapshot.rows if row.status == "RUNNING")

    status = cli("status", run_id, *STACK, "--stuck-after", "0", "--json")
    assert status.exit_code == 3  # still running
    report = _json(status)
    assert [job["age"] for job in report["stuck"]] == [waiting_age]
    assert report["stuck"][0]["vcpus"] == 2  # the job definition's request (right-sized: 2 vCPU)
    assert any("UNMANAGED" in cause for cause in report["stuck"][0]["causes"])
    assert [(ce["name"], ce["state"], ce["status"]) for ce in report["compute_environments"]] == [
        ("agesweep-local-local-processes", "ENABLED", "VALID")
    ]
    table = cli("status", run_id, *STACK, "--stuck-after", "0")
    assert "RUNNABLE for too long" in table.stdout and "agesweep-local-local-processes" in table.stdout
    assert _json(cli("status", run_id, *STACK, "--json"))["stuck"] == []  # the default 600 s: not yet stuck

    follower = subprocess.Popen(  # `logs -f` in its own process, endpoint from AWS_ENDPOINT_URL
        [sys.executable, "-m", "agesweep.cli", "logs", run_id, *STACK, "--age", str(running_age), "-f", "--interval", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        declined = cli("cancel", run_id, *STACK, input="n\n")
        assert declined.exit_code == 0 and "nothing cancelled" in declined.output
        assert describe_run(found, run_id).status == "RUNNING"

        # in its own process, as an operator runs it: the alert Lambdas that the terminated jobs
        # trigger run in this process and would otherwise print into the in-process runner's stdout
        cancelled = subprocess.run(
            [sys.executable, "-m", "agesweep.cli", "cancel", run_id, *STACK, "--yes", "--json"],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
        result = json.loads(cancelled.stdout)
        assert result["stopped"] is True
        assert sorted((job["age"], job["status"]) for job in result["terminated"]) == sorted(
            [(waiting_age, "RUNNABLE")] + [(row.age, "RUNNING") for row in snapshot.rows if row.status == "RUNNING"]
        )
        out, err = follower.communicate(timeout=60)  # follows until the terminated job ends
        assert follower.returncode == 0, err
        assert out.strip() and f"age {running_age} attempt 1" in err
    finally:
        if follower.poll() is None:
            follower.kill()

    def ended() -> dict | None:
        report = _json(cli("status", run_id, *STACK, "--json"))
        return report if all(row["status"] == "FAILED" for row in report["ages"]) else None

    final = _wait_for(ended, timeout_s=30)
    assert final["status"] == "ABORTED" and final["exit_code"] == 1
    assert {row["status_reason"] for row in final["ages"]} == {"Cancelled by agesweep cancel"}
    assert cli("status", run_id, *STACK).exit_code == 1
    again = cli("cancel", run_id, *STACK, "--yes")
    assert again.exit_code == 0 and "nothing to cancel" in again.stdout
    assert [(r["run_id"], r["status"]) for r in _json(cli("runs", *STACK, "--json"))] == [(run_id, "ABORTED")]
