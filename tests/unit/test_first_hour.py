"""The first hour of a new user: each defect they hit, reproduced through the CLI (or the function behind it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agesweep.cli import app
from agesweep.contracts import Plan
from agesweep.operations.deployment import AwsClients

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "events" / "manifests" / "demo.yaml"
OFFLINE: dict[str, str | None] = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
    "AWS_SECURITY_TOKEN": None, "AWS_PROFILE": None, "AWS_DEFAULT_REGION": None, "AWS_REGION": None,
}


def _offline(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for key, value in {**OFFLINE, **values}.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)


# ------------------------------------------------------------------ 1: AWS_REGION
def test_aws_region_alone_is_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch, AWS_REGION="eu-west-1")
    assert AwsClients().region == "eu-west-1"
    _offline(monkeypatch, AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="us-east-1")
    assert AwsClients().region == "eu-west-1"  # as the AWS CLI: AWS_REGION first
    assert AwsClients("ap-south-1").region == "ap-south-1"  # --region beats both


def test_submit_with_aws_region_gets_past_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch, AWS_REGION="us-east-1")
    result = CliRunner().invoke(app, ["submit", str(DEMO), "--stack", "agesweep-local"])
    assert result.exit_code == 2
    assert "no AWS region" not in result.stderr and "no AWS credentials found" in result.stderr


# ------------------------------------------------------------------ 2: one line, exit 2
def test_validate_preflight_without_region_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch)
    result = CliRunner().invoke(app, ["validate", "--preflight", str(DEMO)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.strip() == "error: no AWS region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION"


def test_validate_preflight_without_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch, AWS_REGION="us-east-1")
    result = CliRunner().invoke(app, ["validate", "--preflight", str(DEMO)])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "error:" in result.stderr


def test_a_plan_that_does_not_parse_is_one_line_in_operator_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    import agesweep.cli.status as status_cli

    def broken(*_: Any, **__: Any) -> Any:
        Plan.model_validate({"run_id": "r"})  # what an older/newer stack's history would give

    monkeypatch.setattr(status_cli, "discover_stack", lambda *a, **k: None)
    monkeypatch.setattr(status_cli, "run_status", broken)
    result = CliRunner().invoke(app, ["status", "r", "--stack", "s"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the stack's Plan does not match this agesweep's contracts: ")
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ 14: --workers, --version, cancel, --simulate-failure
def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"agesweep {version('agesweep')}"


def test_workers_help_says_what_0_means() -> None:
    result = CliRunner().invoke(app, ["local", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "(default 0 = auto: this machine's CPU count)" in result.stdout and "[default: 0]" not in result.stdout


def test_declining_cancel_cancels_nothing_and_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    import agesweep.cli.cancel as cancel_cli
    from agesweep.operations.executions import Execution
    from agesweep.tracking import AgeProgress

    execution = Execution(run_id="r", arn="arn:aws:states:us-east-1:1:execution:sm:r", status="RUNNING")
    running = [AgeProgress(age=40, job_name="j", array_size=0, status="RUNNING")]
    monkeypatch.setattr(cancel_cli, "discover_stack", lambda *a, **k: None)
    monkeypatch.setattr(cancel_cli, "unfinished_jobs", lambda *a, **k: (execution, running))
    called: list[str] = []
    monkeypatch.setattr(cancel_cli, "cancel_run", lambda *a, **k: called.append("cancel"))
    result = CliRunner().invoke(app, ["cancel", "r", "--stack", "s"], input="n\n")
    assert result.exit_code == 0, result.output
    assert "nothing cancelled" in result.stderr and called == []


def test_simulating_an_age_the_manifest_does_not_run_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["local", str(DEMO), "--simulate-failure", "99", "--workdir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "age 99 is not in demo.yaml (its ages: 40..79)" in result.stdout
    assert not (tmp_path / "data").exists()  # nothing started
    spot = CliRunner().invoke(app, ["local", str(DEMO), "--simulate-spot-interruption", "12", "--workdir", str(tmp_path)])
    assert spot.exit_code == 2 and "age 12 is not in demo.yaml" in spot.stdout


# ------------------------------------------------------------------ piped progress, terminal-sized table, ETA
def _rows(statuses: dict[int, str]) -> list[Any]:
    from agesweep.tracking import AgeProgress

    return [AgeProgress(age=age, job_name=f"j-{age}", array_size=0, status=status, started_at=0.0,
                        stopped_at=10.0 if status in {"SUCCEEDED", "FAILED"} else None, status_reason=None)
            for age, status in statuses.items()]


def _progress(status: str, rows: list[Any]) -> Any:
    import time

    from agesweep.local.session import Progress

    return Progress(run_id="demo-1", status=status, plan=None, rows=rows, started=time.time())


def test_piped_local_progress_is_one_line_per_status_change() -> None:
    import io

    from rich.console import Console

    from agesweep.cli.local import ChangeLines

    buffer = io.StringIO()
    lines = ChangeLines(Console(file=buffer, width=240))
    lines(_progress("RUNNING", []))
    lines(_progress("RUNNING", _rows({40: "RUNNING", 41: "RUNNABLE"})))
    lines(_progress("RUNNING", _rows({40: "RUNNING", 41: "RUNNABLE"})))  # no change: no line
    failed = _rows({40: "SUCCEEDED", 41: "FAILED"})
    failed[1].status_reason = "Essential container in task exited"
    lines(_progress("SUCCEEDED", failed))
    text = [line.split("s ", 1)[1] for line in buffer.getvalue().splitlines()]
    assert text == [
        "run demo-1: execution RUNNING", "age 40 RUNNING", "age 41 RUNNABLE",
        "run demo-1: execution SUCCEEDED", "age 40 SUCCEEDED", "age 41 FAILED (Essential container in task exited)",
    ]


def test_the_live_table_fits_an_80x24_terminal_and_says_what_it_left_out() -> None:
    import io

    from rich.console import Console

    from agesweep.cli.local import progress_view

    statuses = {age: "SUCCEEDED" for age in range(40, 70)} | {70: "FAILED"} | {age: "RUNNING" for age in range(71, 75)}
    statuses |= {age: "RUNNABLE" for age in range(75, 80)}
    buffer = io.StringIO()
    Console(file=buffer, width=80, height=24).print(progress_view(_progress("RUNNING", _rows(statuses)), 4, (80, 24)))
    shown = buffer.getvalue().splitlines()
    assert len(shown) <= 23
    assert any(line.lstrip().startswith("79 ") for line in shown)  # the last age is on screen
    assert any(line.lstrip().startswith("70 ") for line in shown)  # and the failed one
    assert "more ages not shown: succeeded" in shown[-1]
    assert "ETA" in shown[0] + shown[1]


def test_eta_divides_by_what_really_runs_at_once() -> None:
    from agesweep.operations.status import eta_seconds, parallelism_now

    rows = _rows({40: "SUCCEEDED", 41: "RUNNING", 42: "RUNNING"} | {age: "RUNNABLE" for age in range(43, 50)})
    assert parallelism_now(rows, max_concurrency=40) == 2  # not 40: two jobs run, the rest wait
    assert parallelism_now(_rows({40: "RUNNABLE"}), max_concurrency=40) == 1
    assert eta_seconds(rows, parallelism_now(rows, 40)) == 10 * 5  # 9 left, 2 at once


# ------------------------------------------------------------------ 7: a rejected manifest, diagnosed by `status`
PROBLEMS = [
    "ages: 30, 31 outside the allowed ages (40..79)",
    "job.vcpu: unknown field 'vcpu' (did you mean 'vcpus'?)",
]


def _rejected_history() -> list[dict[str, Any]]:
    import json

    cause = json.dumps({"errorMessage": "\n".join(PROBLEMS), "errorType": "ManifestInvalid", "stackTrace": []})
    return [
        {"id": 1, "type": "ExecutionStarted", "executionStartedEventDetails": {"input": "{}"}},
        {"id": 2, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "ValidateManifest", "input": "{}"}},
        {"id": 3, "type": "TaskFailed", "taskFailedEventDetails": {"resourceType": "lambda", "resource": "invoke",
                                                                    "error": "ManifestInvalid", "cause": cause}},
        {"id": 4, "type": "FailStateEntered", "stateEnteredEventDetails": {
            "name": "ManifestRejected", "input": json.dumps({"error": {"Error": "ManifestInvalid", "Cause": cause}})}},
        {"id": 5, "type": "ExecutionFailed", "executionFailedEventDetails": {
            "error": "ManifestRejected", "cause": "The manifest, or something it names, failed validation; no job was submitted."}},
    ]


class _Sfn:
    def __init__(self, history: list[dict[str, Any]]) -> None:
        self.history = history

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        return {"name": "bad-1", "executionArn": executionArn, "status": "FAILED", "error": "ManifestRejected",
                "cause": "The manifest, or something it names, failed validation; no job was submitted."}

    def get_paginator(self, _: str) -> Any:
        history = self.history

        class _Pages:
            def paginate(self, **__: Any) -> list[dict[str, Any]]:
                return [{"events": history}]

        return _Pages()


class _Stack:
    name, region, log_group = "s", "us-east-1", "/aws/batch/job"

    def __init__(self, history: list[dict[str, Any]]) -> None:
        self.sfn = _Sfn(history)

    def client(self, service: str) -> Any:
        assert service == "stepfunctions", service  # nothing was submitted: Batch is never asked
        return self.sfn

    def execution_arn(self, run: str) -> str:
        return f"arn:aws:states:us-east-1:1:execution:sm:{run}"


def test_status_of_a_rejected_manifest_lists_every_problem_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import agesweep.cli.status as status_cli

    monkeypatch.setattr(status_cli, "discover_stack", lambda *a, **k: _Stack(_rejected_history()))
    result = CliRunner().invoke(app, ["status", "bad-1", "--stack", "s"], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "ManifestInvalid, 2 problems" in result.stdout
    for problem in PROBLEMS:
        assert problem in result.stdout.splitlines()
    as_json = CliRunner().invoke(app, ["status", "bad-1", "--stack", "s", "--json"])
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout)["rejection"] == {"error": "ManifestInvalid", "problems": PROBLEMS}


def test_a_rejection_without_a_lambda_error_still_shows_its_cause() -> None:
    from agesweep.operations.executions import rejection_from_history

    history = [event for event in _rejected_history() if event["type"] not in {"TaskFailed", "FailStateEntered"}]
    rejection = rejection_from_history(history)
    assert rejection is not None and rejection.problems == [
        "The manifest, or something it names, failed validation; no job was submitted."
    ]
    assert rejection_from_history(history[:2]) is None  # still running: not rejected
