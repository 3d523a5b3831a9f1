"""`agesweep runs`: the stack's recent runs with outcome and duration, newest first."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from agesweep.cli.options import AsJson, Region, StackName
from agesweep.cli.output import fmt_duration, fmt_time, operator_errors, out, print_json, styled
from agesweep.operations.deployment import DEFAULT_STACK, discover_stack
from agesweep.operations.runs import RunSummary, list_runs


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def runs_table(stack_name: str, listed: list[RunSummary]) -> Table:
    table = Table(title=f"runs of {stack_name} (newest first)", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("run id", justify="left", no_wrap=True)
    for column in ("status", "started"):
        table.add_column(column, justify="left")
    for column in ("duration", "ok", "failed", "of"):
        table.add_column(column, justify="right")
    with_source = any(r.source for r in listed)
    if with_source:
        table.add_column("from", justify="left", overflow="fold")
    for r in listed:
        status = styled(r.status) + (f" (identical to {r.identical_to})" if r.identical_to else "")
        cells = [r.run_id, status, fmt_time(r.started_at), fmt_duration(r.duration_s),
                 _count(r.succeeded), _count(r.failed), _count(r.total)]
        table.add_row(*cells, *([r.source or ""] if with_source else []))
    return table


def runs(
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many of the newest runs.")] = 20,
    as_json: AsJson = False,
) -> None:
    """List the stack's recent runs with outcome and duration, newest first.

    Each run: status, start, duration and — once collated — how many (age, slice) pairs
    succeeded and failed, of how many (from runs/<run_id>/summary.json), and where its manifest
    came from when its uploader said so (efs:/data/manifests/x.yaml for a manifest saved on EFS).
    An upload whose bytes were those of the key's latest run started nothing: it is listed as
    SKIPPED (identical to that run).

    Exit codes: 0 listed, 2 unknown stack or AWS problem.
    """
    with operator_errors():
        found = discover_stack(stack, region)
        listed = list_runs(found, limit)
    if as_json:
        print_json([r.to_dict() for r in listed])
        return
    if not listed:
        out().print(f"no runs yet in stack {found.name}: start one with `agesweep submit MANIFEST --stack {found.name}`", markup=False)
        return
    out().print(runs_table(found.name, listed))
