"""`agesweep validate | plan | schema` through typer's runner: exit codes and readable output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agesweep.cli import app

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "events" / "manifests" / "aladyn-0-10000.yaml"
DEMO = ROOT / "events" / "manifests" / "demo.yaml"
CORPUS = ROOT / "tests" / "unit" / "invalid_manifests"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for var in ("BUCKET_NAME", "JOB_QUEUE_ARN", "JOB_DEFINITION_ARN", "AGE_MIN", "AGE_MAX", "ALLOWED_BUCKETS"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


def test_validate_ok(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", str(DEMO)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout and "40 jobs" in result.stdout


def test_validate_invalid_prints_each_problem_on_its_own_line(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", str(CORPUS / "many_problems.yaml")])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert "ManifestInvalid, 7 problems" in lines[0]
    assert (
        "job.cpu: unknown field 'cpu' (did you mean 'vcpus'? "
        "allowed: definition, queue, image, vcpus, memory_mib, gpus, timeout_minutes, attempts, "
        "spot_reclaims_before_on_demand, container, parameters)"
    ) in lines
    assert "Traceback" not in result.output and "\x1b[" not in result.output  # piped: plain text


@pytest.mark.parametrize("name", ["empty.yaml", "binary.yaml", "latin1.yaml", "alias_bomb.yaml", "python_tag.yaml"])
def test_unreadable_files_get_one_line_and_exit_2(runner: CliRunner, name: str) -> None:
    result = runner.invoke(app, ["validate", str(CORPUS / name)])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 2
    assert result.stderr.splitlines()[1].startswith("manifest: ")


def test_missing_file_is_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "manifest: cannot read" in result.stderr


def test_validate_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "--json", str(CORPUS / "ages_reversed.yaml")])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "valid": False, "error": "ManifestInvalid", "problems": ["ages: from 60 is above to 50 (from ≤ to)"]}


def test_plan_table_shows_every_job(runner: CliRunner) -> None:
    result = runner.invoke(app, ["plan", str(SEED)])
    assert result.exit_code == 0, result.output
    for age in range(40, 80):
        assert f"aladyn-0-10000-age-{age}" in result.stdout
    assert "Jobs: 40" in result.stdout and "Estimate" in result.stdout and "history events of 25,000" in result.stdout


def test_plan_json_is_the_state_machine_plan(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "my-stack-bucket")
    result = runner.invoke(app, ["plan", "--json", str(SEED)])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["items"][15]["job_name"] == "aladyn-0-10000-age-55"
    assert plan["run_id"].startswith("aladyn-0-10000-") and plan["results_uri"].startswith("s3://my-stack-bucket/runs/")


def test_schema(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "agesweep run manifest" and "ages" in schema["properties"]


def test_validate_and_plan_speak_of_points_for_your_own_job(runner: CliRunner, tmp_path: Path) -> None:
    sen2cor = ROOT / "events" / "manifests" / "sen2cor-scenes.yaml"
    result = runner.invoke(app, ["validate", str(sen2cor)])
    assert result.exit_code == 0, result.output
    assert "run sen2cor, 3 points (scene), 3 jobs" in result.stdout
    planned = runner.invoke(app, ["plan", str(sen2cor)], env={"COLUMNS": "400"})
    assert planned.exit_code == 0, planned.output
    assert "(registered from job.container)" in planned.stdout and "8192" in planned.stdout  # the spec's memory
    many = tmp_path / "many.yaml"
    many.write_text("axes: {n: {from: 1, to: 1500}}\njob: {container: {image: 'x/y:1.0', command: [run, Ref::n]}}\n")
    big = runner.invoke(app, ["plan", str(many)], env={"COLUMNS": "400"})
    assert big.exit_code == 0, big.output
    assert "Map: Distributed (items in runs/" in big.stdout
