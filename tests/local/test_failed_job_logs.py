"""A failed job explains itself: `agesweep status` shows the last lines of its log, and
`agesweep local` prints where its log file is."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from agesweep.cli import app
from agesweep.cli.local import print_failed_logs
from agesweep.exit_codes import ExitCode
from agesweep.local.cloud import SimulatedFailure
from agesweep.local.session import run_manifest
from tests.local.conftest import write_manifest

MESSAGE = "agesweep local: simulated application error for age 51"


def test_status_shows_a_failed_jobs_log_tail_and_local_mode_its_log_file(make_stack, tmp_path: Path) -> None:
    stack = make_stack(simulated_failures=[SimulatedFailure(age=51)])
    manifest = write_manifest(tmp_path / "tail.yaml", [50, 51], run_name="tail", epochs=3)
    result = run_manifest(stack, manifest)
    assert result.exit_code == ExitCode.SOME_FAILED

    runner = CliRunner()
    as_json = runner.invoke(app, ["status", result.run_id, "--stack", "agesweep-local", "--json"])
    assert as_json.exit_code == ExitCode.SOME_FAILED, as_json.output
    ages = {row["age"]: row for row in json.loads(as_json.stdout)["ages"]}
    assert ages[51]["log_tail"] == [MESSAGE]
    assert ages[50]["log_tail"] == []  # succeeded: no tail looked up
    table = runner.invoke(app, ["status", result.run_id, "--stack", "agesweep-local"])
    assert "age 51 failed" in table.stdout and f"| {MESSAGE}" in table.stdout

    console = Console(record=True, width=400)
    print_failed_logs(console, stack, result)
    printed = console.export_text().splitlines()
    failed_job = next(row.job_id for row in result.rows if row.age == 51)
    paths = stack.batch.log_paths(failed_job)
    assert printed == [f"age 51 failed; its log: {path}" for path in paths] and len(paths) == 1
    assert MESSAGE in paths[0].read_text()
