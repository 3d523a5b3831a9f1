"""Everything the CLI prints through: consoles, one-line errors, --json, and the rich tables and
formats (status styles, times, durations) shared by `agesweep local` and the operator commands."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agesweep.errors import AgesweepError, ManifestInvalid
from agesweep.exit_codes import ExitCode
from agesweep.operations.errors import OpsError, explain
from agesweep.tracking import AgeProgress

STATUS_STYLE = {
    "SUCCEEDED": "green", "FAILED": "bold red", "RUNNING": "cyan", "STARTING": "cyan",
    "RUNNABLE": "yellow", "PENDING": "yellow", "SUBMITTED": "yellow", "NOT SUBMITTED": "dim",
    "ABORTED": "bold red", "TIMED_OUT": "bold red",
}


# ------------------------------------------------------------------------------------ consoles
def out() -> Console:
    """stdout; piped, never cut job names or paths to 80 columns."""
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 240
    return console


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: Any, *, lines: bool = False) -> None:
    """--json output: indented, or one compact line per value (JSON Lines, flushed) with `lines`."""
    if lines:
        print(json.dumps(value, default=str), flush=True)
    else:
        print(json.dumps(value, indent=2, default=str))


def print_error(message: str) -> None:
    """One red `error:` line on stderr."""
    err().print(f"[bold red]error:[/] {message}", highlight=False)


@contextlib.contextmanager
def operator_errors() -> Iterator[None]:
    """One red line and exit 2 for anything the operator can fix; never a traceback."""
    try:
        yield
    except OpsError as exc:
        print_error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except (BotoCoreError, ClientError) as exc:  # a call outside operations' aws_errors(): same one line
        print_error(explain(exc))
        raise typer.Exit(ExitCode.INVALID) from None
    except ValidationError as exc:  # a plan/summary of the stack that this CLI's contracts do not read
        print_error(contract_mismatch(exc))
        raise typer.Exit(ExitCode.INVALID) from None


def contract_mismatch(exc: ValidationError) -> str:
    """One line for a stack's plan or summary that does not parse into agesweep.contracts."""
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return (
        f"the stack's {exc.title} does not match this agesweep's contracts: {where}: {first['msg']}{more} "
        "— is the CLI the same version as the deployed stack (pip install the stack's revision)?"
    )


def fail_manifest(path: Path, exc: AgesweepError, as_json: bool) -> NoReturn:
    """Every problem of an invalid manifest (one per line, or {valid: false, problems} as JSON); exit 2."""
    problems = exc.problems if isinstance(exc, ManifestInvalid) else str(exc).splitlines()
    if as_json:
        print_json({"valid": False, "error": type(exc).__name__, "problems": problems})
    else:
        console = err()
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        console.print(f"[bold red]✗[/] {path}: {type(exc).__name__}, {count}:")
        for line in problems:
            console.print(line, markup=False)
    raise typer.Exit(ExitCode.INVALID)


# ------------------------------------------------------------------------------------ formats
def styled(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/{style}]" if style else status


def fmt_elapsed(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:5.1f}s"


def fmt_duration(seconds: float | None) -> str:
    """12s, 4m05s, 2h03m — for totals and ETAs."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def fmt_time(epoch: float | None) -> str:
    """Local wall-clock time of an epoch (date too when it is not today)."""
    if epoch is None:
        return ""
    moment = dt.datetime.fromtimestamp(epoch)
    return moment.strftime("%H:%M:%S" if moment.date() == dt.date.today() else "%Y-%m-%d %H:%M")


# ------------------------------------------------------------------------------------ tables
def slice_counts(row: AgeProgress) -> str:
    return ", ".join(f"{s.lower()} {n}" for s, n in row.children.items()) if row.array_size else ""


# The order in which rows give way when a live table is taller than the terminal: finished ones first.
_KEEP_ORDER = {"FAILED": 0, "RUNNING": 1, "STARTING": 1, "RUNNABLE": 2, "PENDING": 2, "SUBMITTED": 2, "NOT SUBMITTED": 3, "SUCCEEDED": 4}


def rows_that_fit(rows: list[AgeProgress], room: int) -> tuple[list[AgeProgress], str | None]:
    """At most `room` lines' worth of rows (in age order) and a line that counts the rest by status.

    A live display taller than the terminal is cut without a word; this keeps the failed and
    running ages on screen and summarises the others instead.
    """
    if len(rows) <= room:
        return rows, None
    keep = max(0, room - 1)  # one line for the summary
    order = {id(row): n for n, row in enumerate(sorted(rows, key=lambda r: -1 if r.age is None else r.age))}
    kept = sorted(sorted(rows, key=lambda r: (_KEEP_ORDER.get(r.status, 2), order[id(r)]))[:keep], key=lambda r: order[id(r)])
    shown = {id(row) for row in kept}
    hidden = Counter(row.status for row in rows if id(row) not in shown)
    what = "points" if any(row.point for row in rows) else "ages"
    summary = f"… {sum(hidden.values())} more {what} not shown: " + ", ".join(
        f"{status.lower()} {count}" for status, count in sorted(hidden.items())
    )
    return kept, summary


def age_table(
    rows: list[AgeProgress],
    *,
    details: bool = False,
    log_link: Callable[[AgeProgress], str | None] | None = None,
    reason_width: int = 60,
) -> Table:
    """age · status · attempt · elapsed · slices · reason; `details` adds started and a log link."""
    table = Table(show_edge=False, pad_edge=False, expand=False)
    first = "point" if any(row.point for row in rows) else "age"
    columns = [first, "status", "attempt"] + (["started"] if details else []) + ["elapsed", "slices", "reason"]
    if details and log_link is not None:
        columns.append("log")
    for column in columns:
        table.add_column(column, justify="right" if column in {"age", "attempt", "elapsed"} else "left")  # a point: left
    for row in rows:
        cells: list[str | Text] = [row.short, styled(row.status), str(row.attempts or "")]
        if details:
            cells.append(fmt_time(row.started_at))
        cells += [fmt_elapsed(row.elapsed_s()), slice_counts(row), Text((row.status_reason or "")[:reason_width])]
        if details and log_link is not None:
            url = log_link(row)
            cells.append(f"[link={url}]logs[/link]" if url else "")
        table.add_row(*cells)
    return table
