"""The `agesweep` command line: one module per command group, registered on one typer app here.

validate / plan / schema: manifest_commands · local: local · submit, status, watch, runs, retry,
cancel, logs: one module each, over agesweep.operations (the boto3 logic, no printing). Every
command prints through agesweep.cli.output; exit codes are agesweep.exit_codes.ExitCode.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from agesweep.cli import cancel, local, logs, manifest_commands, retry, runs, status, submit
from agesweep.cli.options import command_help

app = typer.Typer(
    name="agesweep",
    help="Run per-age training sweeps on AWS Batch through Step Functions — or locally on moto.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)



def package_version() -> str:
    """The installed distribution's version (pyproject.toml), or a note when run from a bare checkout."""
    try:
        return version("agesweep")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _print_version(value: bool) -> None:
    if value:
        print(f"agesweep {package_version()}")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True)
    ] = False,
) -> None:
    """Run per-age training sweeps on AWS Batch through Step Functions — or locally on moto."""


app.command("validate")(manifest_commands.validate)
app.command("plan")(manifest_commands.plan)
app.command("schema")(manifest_commands.schema)
local_app = typer.Typer(cls=local.LocalGroup, help="Local mode: a sweep on this machine, or one function invoked.")
local_app.command("run", hidden=True)(local.local)
local_app.command("invoke")(local.invoke)
app.add_typer(local_app, name="local")
# The operator commands: --help shows each docstring paragraph as one line, wrapped to the terminal.
for _name, _command in (("submit", submit.submit), ("status", status.status), ("watch", status.watch), ("runs", runs.runs),
                        ("retry", retry.retry), ("cancel", cancel.cancel), ("logs", logs.logs)):
    app.command(_name, help=command_help(_command))(_command)

__all__ = ["app"]
