"""`agesweep local invoke FUNCTION -e EVENT`: `sam local invoke` without a container engine — every
function of template.yaml with its sample event from events/, through local mode's Lambda machinery."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agesweep.local.cloud import LocalCloud
from agesweep.local.invoke import invoke, seed_manifest
from training.synth import generate

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
# the README's `sam local invoke` / `agesweep local invoke` lines: each function with its events
INVOCATIONS = [
    ("StartRunFunction", "s3_object_created.json"),
    ("StartRunFunction", "s3_object_created_folder.json"),
    ("ValidateManifestFunction", "validate_manifest.json"),
    ("CollateResultsFunction", "collate_results.json"),
    ("FormatAlertFunction", "batch_job_failed.json"),
    ("ClassifyFailureFunction", "classify_failure.json"),
    ("WatchEfsFunction", "efs_watch_scheduled.json"),
]
GLOBAL_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    workdir = tmp_path_factory.mktemp("invoke")
    generate(workdir / "data" / "input")  # the inputs the validate step's pre-flight looks for
    with LocalCloud(workdir=workdir, data_dir=workdir / "data", workers=1) as started:
        yield started


def _event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_every_function_is_invoked_with_its_sample_event(cloud: LocalCloud) -> None:
    assert sorted({function for function, _ in INVOCATIONS}) == sorted(cloud.spec.functions)
    results = {}
    for function, event in INVOCATIONS:
        result = invoke(cloud, function, seed_manifest(cloud, _event(event), None))
        assert not result.errored, (function, event, result.payload, result.log)
        results[event] = result.payload
    assert results["s3_object_created.json"]["started"] is True
    assert results["s3_object_created_folder.json"] == {"started": False, "reason": "folder marker"}
    plan = results["validate_manifest.json"]
    assert plan["run_id"] == _event("validate_manifest.json")["run_id"] and plan["items"]
    assert plan["job_queue"] == cloud.job_queue_arn  # the function's environment, resolved to the local stack
    assert results["collate_results.json"]["run_id"] == "aladyn-0-10000-3f2a9c1b7e4d"
    assert results["batch_job_failed.json"]["subject"].startswith("agesweep job failed: age 55")
    assert results["classify_failure.json"]["escalate"] is True  # every failure was a lost host


def test_a_raising_handler_gives_error_type_and_message(cloud: LocalCloud) -> None:
    result = invoke(cloud, "FormatAlertFunction", _event("execution_failed.json"))  # no such execution locally
    assert result.errored
    assert result.payload["errorType"] == "ExecutionDoesNotExist" and result.payload["errorMessage"]


def test_env_json_names_each_functions_variables(cloud: LocalCloud) -> None:
    env = json.loads((EVENTS / "env.json").read_text())
    assert sorted(env) == sorted(cloud.spec.functions)
    for function, spec in cloud.spec.functions.items():
        assert set(env[function]) == set(spec.environment) - GLOBAL_ENV, function


def test_the_readme_shows_both_gestures_for_every_function() -> None:
    readme = (ROOT / "README.md").read_text()
    for function, event in INVOCATIONS:
        assert f"sam local invoke {function} -e events/{event} --env-vars events/env.json" in readme, function
        assert f"agesweep local invoke {function} -e events/{event}" in readme, function


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agesweep.cli", "local", "invoke", *args, "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )


def test_the_command_prints_the_return_value_on_stdout_and_the_logs_on_stderr(tmp_path: Path) -> None:
    done = _cli(tmp_path, "ValidateManifestFunction", "-e", str(EVENTS / "validate_manifest.json"))
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)  # nothing but the JSON on stdout
    assert plan["run_name"] == "aladyn-0-10000"
    assert "manifest planned" in done.stderr

    failed = _cli(tmp_path, "FormatAlertFunction", "-e", str(EVENTS / "execution_failed.json"))
    assert failed.returncode == 1, failed.stderr
    assert set(json.loads(failed.stdout)) == {"errorType", "errorMessage"}
