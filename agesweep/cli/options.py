"""The options the operator commands share (`--stack`, `--region`, `--json`, RUN, ...) and their help text."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

StackName = Annotated[
    str,
    typer.Option(
        "--stack", envvar="AGESWEEP_STACK",
        help="CloudFormation stack whose Outputs name the bucket, state machine, queue and log group "
             "(local mode: agesweep-local).",
    ),
]
Region = Annotated[
    str | None,
    typer.Option("--region", help="AWS region of the stack (default: AWS_REGION / AWS_DEFAULT_REGION / profile)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
Run = Annotated[str, typer.Argument(help="Run id (the execution name, as `agesweep runs` lists it) or execution ARN.", show_default=False)]
StuckAfter = Annotated[
    float,
    typer.Option("--stuck-after", help="Seconds in RUNNABLE after which a job is flagged as stuck, with likely causes."),
]
Wait = Annotated[float, typer.Option("--wait", help="Seconds to wait for the upload to start its execution.")]
Force = Annotated[
    bool,
    typer.Option(
        "--force", "--rerun",
        help="Upload even when the same bytes are already the current version, asking for a rerun (starts a new run).",
    ),
]


def command_help(command: Callable[..., Any]) -> str:
    """The docstring with each paragraph on one line, so --help wraps it to the terminal."""
    paragraphs = inspect.cleandoc(command.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)
