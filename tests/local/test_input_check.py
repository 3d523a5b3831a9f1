"""Pre-flight input check in local mode: a manifest whose /data input lacks the job's files is
rejected by the validate step, every missing file named, before any Batch job is submitted."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from agesweep.cli import app
from agesweep.exit_codes import ExitCode
from agesweep.preflight import JOB_INPUT_FILES
from tests.local.conftest import write_manifest


def test_a_missing_input_is_rejected_with_every_file_named_and_no_job(data_dir: Path, tmp_path: Path) -> None:
    partial = data_dir / "partial-input"
    partial.mkdir(exist_ok=True)
    for name in JOB_INPUT_FILES[2:]:
        (partial / name).write_bytes((data_dir / "input" / name).read_bytes())
    manifest = write_manifest(tmp_path / "nofiles.yaml", [50], run_name="nofiles")
    manifest.write_text(manifest.read_text().replace("input: /data/input", "input: /data/partial-input"))

    result = CliRunner().invoke(
        app, ["local", str(manifest), "--data", str(data_dir), "--workdir", str(tmp_path / "work"), "--workers", "1"]
    )

    assert result.exit_code == ExitCode.INVALID, result.output
    text = " ".join(result.output.split())  # panels wrap long lines
    assert "InputMissing" in text
    for name in JOB_INPUT_FILES[:2]:
        assert f"/data/partial-input/{name} is missing" in text, name
    assert "no job was submitted" in text
    assert not list((tmp_path / "work" / "logs").glob("*-attempt*.log"))  # no Batch attempt ever ran
