"""`agesweep status` and `agesweep watch`: where a run stands, once or live until it ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agesweep.cli.options import AsJson, Region, Run, StackName, StuckAfter
from agesweep.cli.output import age_table, fmt_duration, fmt_time, operator_errors, out, print_json, styled
from agesweep.operations.deployment import DEFAULT_STACK, discover_stack
from agesweep.operations.status import RunStatus, run_status, watch_run
from agesweep.operations.stuck_jobs import DEFAULT_STUCK_AFTER_S, ComputeEnvironment


def _header(status: RunStatus) -> str:
    counts = " · ".join(f"{name.lower()} {n}" for name, n in sorted(status.counts.items()))
    parts = [
        f"run [bold]{status.run_id}[/bold]",
        f"execution {styled(status.status)}",
        f"started {fmt_time(status.started_at)}",
        f"elapsed {fmt_duration(status.elapsed_s())}",
    ]
    if counts:
        parts.append(counts)
    if not status.finished:
        parts.append(f"ETA {fmt_duration(status.eta_s)}" if status.eta_s is not None else "ETA after the first age ends")
    return " · ".join(parts)


def compute_environment_table(environments: list[ComputeEnvironment]) -> Table:
    table = Table(title="compute environments (queue order)", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("name", "type", "state", "status", "vCPUs min/desired/max", "instance types", "reason"):
        table.add_column(column)
    for ce in environments:
        table.add_row(
            ce.name, f"{ce.type or ''} {ce.capacity or ''}".strip(), ce.state or "", ce.status or "",
            "/".join("" if v is None else str(v) for v in (ce.min_vcpus, ce.desired_vcpus, ce.max_vcpus)),
            ", ".join(ce.instance_types), Text(ce.status_reason or ""),
        )
    return table


def _stuck_view(status: RunStatus) -> list[Any]:
    if not status.stuck:
        return []
    parts: list[Any] = [Text(f"⚠ {len(status.stuck)} job(s) RUNNABLE for too long", style="bold yellow")]
    for job in status.stuck:
        asks = f"{job.vcpus:g} vCPU" if job.vcpus else "? vCPU"
        if job.memory_mib:
            asks += f", {job.memory_mib} MiB"
        parts.append(Text(f"  {job.label or f'age {job.age}'} ({job.job_id}) waiting {fmt_duration(job.waiting_s)}, asks {asks}; likely:"))
        parts.extend(Text(f"    - {cause}") for cause in job.causes)
    parts.append(compute_environment_table(status.compute_environments))
    return parts


def _outcome_view(status: RunStatus) -> list[Any]:
    parts: list[Any] = []
    if status.collated:
        c = status.collated
        what = "jobs" if any(row.point for row in status.rows) else "(age, slice) pairs"
        parts.append(f"[bold]{c.succeeded} of {c.total} {what} succeeded, {c.failed} failed[/bold]")
    if status.rejection is not None:
        problems = status.rejection.problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        parts.append(Text(f"✗ the manifest was rejected, nothing was submitted: {status.rejection.error}, {count}:", style="bold red"))
        parts.extend(Text(line) for line in problems)
        parts.append(Text("fix the manifest (agesweep validate FILE lists the same problems) and submit it again", style="dim"))
    elif status.error or status.cause:
        parts.append(Text(f"{status.status}: {status.error or ''} {(status.cause or '')[:500]}".rstrip(), style="red"))
    if status.counts.get("FAILED"):
        pick = "--point AXIS=VALUE,..." if any(row.point for row in status.rows) else "--age AGE"
        which = "points'" if any(row.point for row in status.rows) else "ages'"
        hint = f"failed {which} logs: agesweep logs {status.run_id} {pick}; rerun them: agesweep retry {status.run_id}"
        parts.append(Text(hint, style="dim"))
    return parts


def _tails_view(status: RunStatus) -> list[Any]:
    """Each failed job's reason in its own words: the last lines of its log."""
    parts: list[Any] = []
    for row in status.rows:
        lines = status.log_tails.get(row.job_id or "")
        if lines:
            parts.append(Text(f"{row.label} failed ({row.status_reason or 'no reason'}); its log ends:", style="red"))
            parts.extend(Text(f"  | {line}") for line in lines)
    return parts


def status_view(status: RunStatus) -> Group:
    """Header, one row per age, stuck jobs, and the outcome once the run has ended."""
    parts: list[Any] = [_header(status)]
    if status.rows:
        parts.append(age_table(status.rows, details=True, log_link=status.log_url))
    elif status.status == "RUNNING":
        parts.append("[dim]validating the manifest…[/dim]")
    parts.extend(_stuck_view(status))
    parts.extend(_tails_view(status))
    if status.finished:
        parts.extend(_outcome_view(status))
    return Group(*parts)


def status(
    run: Run,
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    stuck_after: StuckAfter = DEFAULT_STUCK_AFTER_S,
    as_json: AsJson = False,
) -> None:
    """Show where a run stands: a row per age, totals, an ETA and stuck jobs.

    Each row: status, attempt, started, elapsed, status reason, CloudWatch log link, and the
    children's status counts for array jobs. Read live from Step Functions (the plan) and Batch (the jobs, matched by the run_id job
    parameter). Jobs RUNNABLE longer than --stuck-after are flagged with likely causes (compute
    environment maxvCpus vs the job's vCPUs, instance types, EC2 vCPU quotas, spot capacity) and
    the state of the queue's compute environments. The ETA is the mean duration of the ages that
    ended × the ages left ÷ the ages running now (what the compute environment really runs at once).

    A rejected manifest shows every problem ValidateManifest found, one per line.

    Exit codes: 0 succeeded (no age failed), 1 failed, aborted, timed out or an age failed,
    2 the manifest was rejected (nothing ran), unknown stack/run or AWS problem, 3 still running.
    """
    with operator_errors():
        snapshot = run_status(discover_stack(stack, region), run, stuck_after)
    if as_json:
        print_json(snapshot.to_dict())
    else:
        out().print(status_view(snapshot))
    raise typer.Exit(snapshot.exit_code)


def _print_changes(console: Console, snapshot: RunStatus, last: dict[str, str], changed: dict[str, str]) -> None:
    """One line per age (or point) whose status changed since the last snapshot (piped `watch`)."""
    for row in snapshot.rows:
        if row.label in changed:
            reason = f" ({row.status_reason})" if row.status_reason and row.status == "FAILED" else ""
            console.print(f"{fmt_time(time.time())} {row.label}: {last.get(row.label, '-')} → {row.status}{reason}", markup=False)


def _follow_piped(console: Console, snapshots: Iterator[RunStatus], as_json: bool) -> RunStatus | None:
    """Piped `watch`: status changes as lines (or JSON Lines); the full table once at the end."""
    last: dict[str, str] = {}
    last_execution = ""
    final: RunStatus | None = None
    for final in snapshots:
        changed = {row.label: row.status for row in final.rows if last.get(row.label) != row.status}
        if as_json:
            if changed or final.status != last_execution:
                print_json(final.to_dict(), lines=True)
        else:
            _print_changes(console, final, last, changed)
        last.update(changed)
        last_execution = final.status
    if final is not None and not as_json:
        console.print(status_view(final))
    return final


def watch(
    run: Run,
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between refreshes.")] = 5.0,
    stuck_after: StuckAfter = DEFAULT_STUCK_AFTER_S,
    as_json: AsJson = False,
) -> None:
    """Follow a run live until its execution ends.

    The `status` table, refreshed every --interval.
    On a terminal the table updates in place; piped (CI logs), each age's status change is
    printed as a line and the full table once at the end; --json prints one JSON snapshot per
    change (JSON Lines). Exit codes as for `status` when it ends: 0 succeeded, 1 failed or
    aborted (or an age failed), 2 the manifest was rejected, unknown stack/run or AWS problem.
    """
    console = out()
    final: RunStatus | None = None
    with operator_errors():
        snapshots = watch_run(discover_stack(stack, region), run, interval, stuck_after)
        if console.is_terminal and not as_json:
            with Live(console=console, refresh_per_second=4, transient=False) as live:
                for final in snapshots:
                    live.update(status_view(final))
        else:
            final = _follow_piped(console, snapshots, as_json)
    assert final is not None
    raise typer.Exit(final.exit_code)
