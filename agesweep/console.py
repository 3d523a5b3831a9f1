"""Rich rendering shared by `agesweep local` and the operator commands: one row per age."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from rich.table import Table
from rich.text import Text

from agesweep.tracking import AgeProgress

STATUS_STYLE = {
    "SUCCEEDED": "green", "FAILED": "bold red", "RUNNING": "cyan", "STARTING": "cyan",
    "RUNNABLE": "yellow", "PENDING": "yellow", "SUBMITTED": "yellow", "NOT SUBMITTED": "dim",
    "ABORTED": "bold red", "TIMED_OUT": "bold red",
}


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


def slice_counts(row: AgeProgress) -> str:
    return ", ".join(f"{s.lower()} {n}" for s, n in row.children.items()) if row.array_size else ""


def age_table(
    rows: list[AgeProgress],
    *,
    details: bool = False,
    log_link: Callable[[AgeProgress], str | None] | None = None,
    reason_width: int = 60,
) -> Table:
    """age · status · attempt · elapsed · slices · reason; `details` adds started and a log link."""
    table = Table(show_edge=False, pad_edge=False, expand=False)
    columns = ["age", "status", "attempt"] + (["started"] if details else []) + ["elapsed", "slices", "reason"]
    if details and log_link is not None:
        columns.append("log")
    for column in columns:
        table.add_column(column, justify="right" if column in {"age", "attempt", "elapsed"} else "left")
    for row in rows:
        cells: list[str | Text] = [str(row.age), styled(row.status), str(row.attempts or "")]
        if details:
            cells.append(fmt_time(row.started_at))
        cells += [fmt_elapsed(row.elapsed_s()), slice_counts(row), Text((row.status_reason or "")[:reason_width])]
        if details and log_link is not None:
            url = log_link(row)
            cells.append(f"[link={url}]logs[/link]" if url else "")
        table.add_row(*cells)
    return table
