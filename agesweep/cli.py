"""The `agesweep` command line. Each command group lives in agesweep/commands/ and registers here.

Exit codes: 0 success, 1 the sweep ran and some ages failed, 2 invalid input (nothing started).
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="agesweep",
    help="Run per-age training sweeps on AWS Batch through Step Functions — or locally on moto.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Command groups register themselves here (one import + register call per module).
from agesweep.commands import manifest as manifest_commands  # noqa: E402

from agesweep.commands import local as local_commands  # noqa: E402
from agesweep.commands import ops as ops_commands  # noqa: E402

manifest_commands.register(app)
local_commands.register(app)
ops_commands.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
