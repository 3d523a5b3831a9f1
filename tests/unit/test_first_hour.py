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
