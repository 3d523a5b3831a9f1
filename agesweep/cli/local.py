"""`agesweep local`: the deployed system on one machine (moto server + real handlers + real jobs)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from agesweep import tracking
from agesweep.cli.output import age_table, fmt_elapsed, styled
from agesweep.contracts import Summary
from agesweep.exit_codes import ExitCode

if TYPE_CHECKING:  # moto is imported only when local mode runs: other commands start fast
    from agesweep.local.session import LocalRunResult, Progress

DEFAULT_WORKDIR = Path("agesweep-local")


def ensure_input_data(data_dir: Path, console: Console) -> None:
    """Generate the synthetic demo inputs under <data>/input on first use (cached afterwards)."""
    input_dir = data_dir / "input"
    if (input_dir / "Y_tensor.pt").exists():
        return
    from training import synth

    console.print(f"[dim]Generating synthetic input data in {input_dir} (first use only)…[/dim]")
    synth.generate(input_dir)


def progress_view(progress: Progress) -> Group:
    counts = tracking.totals(progress.rows)
    header = (
        f"run [bold]{progress.run_id}[/bold] · execution {progress.status} · "
        f"{time.time() - progress.started:.0f}s · "
        + " · ".join(f"{status.lower()} {count}" for status, count in sorted(counts.items()))
    )
    if not progress.rows:
        return Group(header, "[dim]validating the manifest…[/dim]")
    return Group(header, age_table(progress.rows))


def results_table(summary: Summary) -> Table:
    """One row per (age, slice) of the collated summary, with the headline metrics."""
    table = Table(title=f"run {summary.run_id}", show_edge=False, pad_edge=False)
    for column in ("age", "slice", "status", "attempts", "duration", "held-out C", "final loss", "reason"):
        if column == "reason":
            table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=40)
        else:
            table.add_column(column, justify="left" if column == "status" else "right")
    for part in summary.slices():
        c_index = part.metrics.heldout_c_index if part.metrics else None
        loss = part.metrics.final_loss if part.metrics else None
        table.add_row(
            str(part.age), part.slice_label, styled(part.status),
            str(part.attempts or ""), fmt_elapsed(part.duration_s),
            "" if c_index is None else f"{c_index:.3f}", "" if loss is None else f"{loss:.4f}",
            (part.status_reason or "")[:50],
        )
    return table


def print_result(console: Console, result: LocalRunResult, data_dir: Path) -> None:
    summary_file = result.run_dir / "summary.json"
    if summary_file.exists():
        console.print(results_table(Summary.model_validate_json(summary_file.read_bytes())))
    for note in result.notifications:
        console.print(Panel(note["message"], title=f"SNS: {note['subject']}", expand=False))
    if result.error == "ManifestRejected":
        console.print("[bold red]The manifest was rejected; no job was submitted.[/bold red]")
    elif result.collated:
        c = result.collated
        console.print(
            f"[bold]{c.succeeded} of {c.total} (age, slice) jobs succeeded, {c.failed} failed[/bold] "
            f"in {result.wall_s:.1f}s ({result.history_events} Step Functions history events)."
        )
    else:
        console.print(f"[bold red]Execution {result.status}: {result.error} {result.cause or ''}[/bold red]")
    console.print(f"Run folder: {result.run_dir}  (summary, report, retry manifest, SNS messages)")
    for path in sorted(p for p in result.artifacts if p.parent == result.run_dir):
        console.print(f"  {path.name}")
    outputs = data_dir / "output" / result.run_id
    if outputs.exists():
        console.print(f"Models: {outputs}/age_<AGE>/")


def local(
    manifest: Annotated[
        Path | None, typer.Argument(help="Run manifest (YAML or JSON). Omit with --serve.", exists=True, dir_okay=False)
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Local folder mounted as the jobs' /data (default: <workdir>/data).")] = None,
    workdir: Annotated[Path, typer.Option(help="Where runs, logs and SNS messages are kept.")] = DEFAULT_WORKDIR,
    workers: Annotated[int, typer.Option(help="Batch jobs run at once (default: CPU count).")] = 0,
    serve: Annotated[bool, typer.Option(help="Keep the endpoint up for the aws CLI until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(help="Port of the local endpoint (default: a free one).")] = 0,
    simulate_spot_interruption: Annotated[
        list[int] | None,
        typer.Option("--simulate-spot-interruption", help="Reclaim the host of this age's first attempt (repeatable)."),
    ] = None,
    simulate_failure: Annotated[
        list[int] | None,
        typer.Option("--simulate-failure", help="Make this age's job exit non-zero (repeatable)."),
    ] = None,
) -> None:
    """Run a sweep end to end on this machine: the same template.yaml and sweep.asl.json that
    `sam deploy` ships, on a local moto server, with the real Lambda handlers and each Batch job's
    real command as a local process (/data mapped to --data).

    The manifest is put into the local bucket under manifests/ and EventBridge starts the run,
    as in AWS. Exit codes: 0 every age succeeded, 1 some failed, 2 the manifest was invalid
    (no job started).
    """
    from agesweep.local.cloud import LocalCloud, SimulatedFailure, SpotInterruption
    from agesweep.local.session import RunDidNotStart, run_manifest

    console = Console()
    if manifest is None and not serve:
        console.print("[red]Give a MANIFEST, or --serve to keep the endpoint up.[/red]")
        raise typer.Exit(ExitCode.INVALID)
    data_dir = (data or workdir / "data").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "manifests").mkdir(exist_ok=True)  # the EFS watcher's folder (/data/manifests/)
    ensure_input_data(data_dir, console)
    stack = LocalCloud(
        workdir=workdir.resolve(),
        data_dir=data_dir,
        workers=workers or os.cpu_count() or 1,
        spot_interruptions=[SpotInterruption(age) for age in simulate_spot_interruption or []],
        simulated_failures=[SimulatedFailure(age) for age in simulate_failure or []],
        port=port or None,
    )
    with stack:
        if serve:
            (stack.workdir / "endpoint.json").write_text(json.dumps(stack.names, indent=2), encoding="utf-8")
            console.print(Panel(
                f"endpoint  {stack.endpoint}\nbucket    {stack.bucket}\nstate machine {stack.state_machine_arn}\n"
                f"job queue {stack.job_queue_arn}\ntopic     {stack.topic_arn}\n\n"
                f"aws --endpoint-url {stack.endpoint} s3 cp m.yaml s3://{stack.bucket}/manifests/m.yaml\n"
                f"or save it on the local EFS: cp m.yaml {data_dir / 'manifests'}/",
                title="agesweep local --serve", expand=False,
            ))
            console.print(f"[dim]names also in {stack.workdir / 'endpoint.json'}; Ctrl-C stops[/dim]")
        if manifest is not None:
            try:
                with Live(console=console, refresh_per_second=4, transient=True) as live:
                    result = run_manifest(stack, manifest, on_progress=lambda p: live.update(progress_view(p)))
            except RunDidNotStart as error:
                console.print(f"[bold red]{error}[/bold red]")
                raise typer.Exit(ExitCode.INVALID) from error
            print_result(console, result, data_dir)
            if not serve:
                raise typer.Exit(result.exit_code)
        try:
            while True:
                for note in stack.drain_notifications():
                    console.print(Panel(note["message"], title=f"SNS: {note['subject']}", expand=False))
                time.sleep(1.0)
        except KeyboardInterrupt:
            console.print("stopped")


