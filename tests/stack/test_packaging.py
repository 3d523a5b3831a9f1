"""pyproject.toml's extras: each place installs what it needs, and the operator CLI works without moto."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from packaging.utils import canonicalize_name

from .conftest import ROOT, pyproject, requirements_of

# Local mode, the plot and the trainer: none of them is the operator CLI's business.
NOT_FOR_THE_CLI = ("moto", "matplotlib", "numpy", "torch", "lifelines", "torchsurv")


def names(*extras: str, core: bool = True) -> set[str]:
    return {canonicalize_name(r.name) for r in requirements_of(*extras, core=core)}


def test_every_requirement_is_pinned_exactly() -> None:
    project = pyproject()
    lines = list(project["dependencies"]) + [req for extra in project["optional-dependencies"].values() for req in extra]
    loose = [req for req in lines if "==" not in req and not req.startswith(f"{project['name']}[")]
    assert loose == [], f"pin these exactly (name==version): {loose}"


def test_core_dependencies_are_minimal() -> None:
    assert names(core=True) == {"pydantic", "pyyaml"}


@pytest.mark.parametrize("extra", ["lambda", "cli"])
def test_lambda_and_cli_extras_do_not_name_local_mode_or_the_plot(extra: str) -> None:
    unwanted = names(extra) & {canonicalize_name(n) for n in NOT_FOR_THE_CLI}
    assert not unwanted, f"agesweep[{extra}] (with the core dependencies) asks for {sorted(unwanted)}"


def test_lambda_extra_has_what_the_handlers_import() -> None:
    assert names("lambda") >= {"boto3", "pydantic", "pyyaml", "aws-lambda-powertools"}
    assert not names("lambda") & {"typer", "rich"}
    powertools = next(r for r in requirements_of("lambda") if r.name == "aws-lambda-powertools")
    assert powertools.extras >= {"parser", "tracer"}


def test_local_extra_has_moto_pinned_and_what_the_handlers_need() -> None:
    moto = next(r for r in requirements_of("local") if r.name == "moto")
    assert str(moto.specifier) == "==5.2.5" and moto.extras >= {"all", "server"}, moto
    assert names("local") >= names("cli") | names("lambda") | names("plot")


def test_dev_extra_has_everything_and_the_linters() -> None:
    assert names("dev") >= names("local") | names("training") | {"pytest", "ruff", "mypy", "aws-sam-cli"}


BLOCKED_IMPORT = textwrap.dedent(
    """
    import importlib.abc, sys

    BLOCKED = set(sys.argv[1].split(","))
    early = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    assert not early, f"imported before the blocker: {early}"

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked: not in agesweep[cli])", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    for name in BLOCKED:  # the blocker works (they are installed in the dev environment)
        try:
            __import__(name)
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit(f"the blocker let {name} through")

    import typer.main
    from typer.testing import CliRunner

    from agesweep.cli import app

    runner = CliRunner()
    commands = sorted(typer.main.get_command(app).commands)
    assert "local" in commands, commands
    for args in [["--help"]] + [[command, "--help"] for command in commands]:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output, result.exception)
    print("commands:", " ".join(commands))
    """
)


def test_cli_imports_and_runs_help_without_local_mode_or_plot_packages() -> None:
    """agesweep[cli] has no moto or matplotlib: the CLI must not import them until `agesweep local` runs."""
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT, ",".join(NOT_FOR_THE_CLI + ("training",))],
        check=False, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "120"},
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "commands:" in done.stdout and "local" in done.stdout
