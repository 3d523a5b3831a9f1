"""`agesweep local` in a new user's first hour: the data folder, the --serve panel and its simulations."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from agesweep.cli import app
from agesweep.exit_codes import ExitCode
from training.layout import INPUT_FILES

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "events" / "manifests" / "demo.yaml"


def test_a_mistyped_data_folder_is_an_error_not_synthetic_data(tmp_path: Path) -> None:
    typo = tmp_path / "mydta"
    result = CliRunner().invoke(app, ["local", str(DEMO), "--data", str(typo), "--workdir", str(tmp_path / "w")],
                                env={"COLUMNS": "400"})
    assert result.exit_code == ExitCode.INVALID, result.output
    assert all(name in result.output for name in INPUT_FILES)
    assert "--synthetic" in result.output
    assert not typo.exists()  # nothing generated, no folder made


def test_a_data_folder_missing_some_inputs_names_them(tmp_path: Path) -> None:
    inputs = tmp_path / "data" / "input"
    inputs.mkdir(parents=True)
    for name in INPUT_FILES[:-1]:
        (inputs / name).write_bytes(b"")
    result = CliRunner().invoke(app, ["local", "--serve", "--data", str(tmp_path / "data"), "--workdir", str(tmp_path / "w")],
                                env={"COLUMNS": "400"})
    assert result.exit_code == ExitCode.INVALID, result.output
    assert INPUT_FILES[-1] in result.output and INPUT_FILES[0] not in result.output.split("lacks", 1)[1]


def test_local_help_documents_the_sweep_and_invoke() -> None:
    sweep = CliRunner().invoke(app, ["local", "--help"], env={"COLUMNS": "200"})
    assert sweep.exit_code == 0 and "--serve" in sweep.output and "agesweep local invoke" in sweep.output
    one = CliRunner().invoke(app, ["local", "invoke", "--help"], env={"COLUMNS": "200"})
    assert one.exit_code == 0 and "sam local invoke" in one.output and "--event" in one.output


def test_local_invoke_of_an_unknown_event_file_is_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["local", "invoke", "StartRunFunction", "-e", str(tmp_path / "nope.json")])
    assert result.exit_code == ExitCode.INVALID


def test_a_template_parameter_must_be_one_the_template_has(tmp_path: Path) -> None:
    runner = CliRunner()
    for bad, what in (("Nope=1", "is not a template parameter"), ("AllowedSecretArns", "is not NAME=VALUE")):
        result = runner.invoke(app, ["local", str(DEMO), "--workdir", str(tmp_path), "--parameter", bad], env={"COLUMNS": "400"})
        assert result.exit_code == ExitCode.INVALID, result.output
        assert what in result.output and "AllowedSecretArns" in result.output


def test_local_functions_metrics_are_dropped_after_each_invocation(monkeypatch, capsys) -> None:
    """Disabled powertools metrics still pile up and print EMF to stdout every 100 values."""
    import types

    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from agesweep.local.lambdas import discard_metrics

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    module = types.ModuleType("fn")
    module.metrics = Metrics(namespace="agesweep-test", service="t")  # type: ignore[attr-defined]
    for _ in range(150):
        module.metrics.add_metric(name="Looks", unit=MetricUnit.Count, value=1)  # type: ignore[attr-defined]
        discard_metrics(module)
    assert '"CloudWatchMetrics"' not in capsys.readouterr().out
