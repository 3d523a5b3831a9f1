"""`agesweep local`: the deployed system on one machine (moto server + real handlers + real jobs)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.cells import cell_len
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer import _click  # typer vendors click: the types TyperGroup's methods take
from typer.core import TyperGroup

from agesweep import tracking
from agesweep.cli.output import age_table, fmt_duration, fmt_elapsed, out, rows_that_fit, styled
from agesweep.contracts import Summary
from agesweep.errors import AgesweepError
from agesweep.exit_codes import ExitCode
from agesweep.manifest import parse_manifest
from agesweep.manifest_source import read_manifest_file
from agesweep.operations.status import eta_seconds
from agesweep.points import jobs_unit, short_label
from agesweep.text import format_metric

if TYPE_CHECKING:  # moto is imported only when local mode runs: other commands start fast
    from agesweep.local.cloud import LocalCloud
    from agesweep.local.session import LocalRunResult, Progress

DEFAULT_WORKDIR = Path("agesweep-local")


class LocalGroup(TyperGroup):
    """`agesweep local MANIFEST [options]` runs a sweep (the default command); `agesweep local invoke …`
    invokes one function. Anything that is not a subcommand's name goes to the default, so every
    `agesweep local` command line of before works unchanged (and `--help` is the sweep's)."""

    default_command = "run"

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: _click.Context, args: list[str]) -> tuple[str | None, _click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        # the default command's usage line reads `agesweep local [OPTIONS] [MANIFEST]`
        return ("" if name == self.default_command else name), command, rest


def missing_inputs(input_dir: Path) -> list[str]:
    """The trainer's input files (training/layout.py) that `input_dir` lacks."""
    from training.layout import INPUT_FILES

    return [name for name in INPUT_FILES if not (input_dir / name).is_file()]


def template_parameters(console: Console, pairs: list[str]) -> dict[str, str]:
    """--parameter NAME=VALUE pairs -> template parameter overrides; a malformed or unknown one is exit 2."""
    from agesweep.local.cloud import REPO_ROOT
    from agesweep.local.template import load_template

    known = set(load_template(REPO_ROOT / "template.yaml").get("Parameters", {}))
    parameters: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in known:
            what = "a template parameter" if sep else "NAME=VALUE"
            console.print(f"[bold red]error:[/] --parameter {pair!r} is not {what} (template parameters: "
                          f"{', '.join(sorted(known))})", highlight=False)
            raise typer.Exit(ExitCode.INVALID)
        parameters[name] = value
    return parameters


def runs_the_trainer(manifest: Path | None) -> bool:
    """Whether the run needs the trainer's inputs: not for your own job (an unreadable or invalid
    manifest is the run's to report, so it counts as the trainer's)."""
    if manifest is None:
        return True
    from agesweep.errors import AgesweepError
    from agesweep.manifest import load_manifest

    try:
        return load_manifest(str(manifest)).workload == "trainer"
    except (AgesweepError, OSError):
        return True


def ensure_input_data(data_dir: Path, console: Console, *, synthetic: bool) -> None:
    """Generate the synthetic demo inputs under <data>/input on first use (cached afterwards) — only
    in the default data folder or with --synthetic: a mistyped --data must not train on made-up data."""
    input_dir = data_dir / "input"
    missing = missing_inputs(input_dir)
    if not missing:
        return
    if not synthetic:
        console.print(
            f"[bold red]error:[/] --data {data_dir} has no trainer inputs: {input_dir} lacks {', '.join(missing)}. "
            "Point --data at the folder whose input/ holds them, or add --synthetic to generate demo data there.",
            highlight=False,
        )
        raise typer.Exit(ExitCode.INVALID)
    from training import synth

    console.print(f"[dim]Generating synthetic input data in {input_dir} (first use only)…[/dim]")
    synth.generate(input_dir)


def progress_header(progress: Progress, workers: int) -> str:
    """run · execution status · elapsed · counts · ETA (ages left ÷ --workers, the real parallelism)."""
    counts = tracking.totals(progress.rows)
    parts = [f"run [bold]{progress.run_id}[/bold]", f"execution {progress.status}", f"{time.time() - progress.started:.0f}s"]
    parts += [f"{status.lower()} {count}" for status, count in sorted(counts.items())]
    if progress.rows and progress.status == "RUNNING":
        eta = eta_seconds(progress.rows, workers)
        parts.append(f"ETA {fmt_duration(eta)}" if eta is not None else "ETA after the first age ends")
    return " · ".join(parts)


def progress_view(progress: Progress, workers: int = 1, size: tuple[int, int] | None = None) -> Group:
    """The live display; with `size` (the terminal's width, height), rows beyond it are summarised in one line."""
    header = progress_header(progress, workers)
    if not progress.rows:
        return Group(header, "[dim]validating the manifest…[/dim]")
    room = len(progress.rows)
    if size is not None:
        width, height = size
        header_lines = -(-cell_len(Text.from_markup(header).plain) // max(1, width))
        room = height - header_lines - 3  # the table's head and rule, and the line the cursor sits on
    rows, more = rows_that_fit(progress.rows, room)
    return Group(header, age_table(rows), *([f"[dim]{more}[/dim]"] if more else []))


class ChangeLines:
    """Piped progress (tee, CI logs): one line per change of the execution's or an age's status."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.execution = ""
        self.ages: dict[tuple[int | None, str], str] = {}

    def __call__(self, progress: Progress) -> None:
        elapsed = f"{time.time() - progress.started:6.0f}s"
        if progress.status != self.execution:
            self.console.print(f"{elapsed} run {progress.run_id}: execution {progress.status}", markup=False)
            self.execution = progress.status
        for row in progress.rows:
            if self.ages.get((row.age, row.job_name)) != row.status:
                reason = f" ({row.status_reason})" if row.status == "FAILED" and row.status_reason else ""
                self.console.print(f"{elapsed} {row.label} {row.status}{reason}", markup=False)
                self.ages[(row.age, row.job_name)] = row.status


def results_table(summary: Summary, *, wide: bool = False) -> Table:
    """One row per (age, slice) of the collated summary, with the headline metrics; `wide`
    (piped output) never cuts the reason."""
    table = Table(title=f"run {summary.run_id}", show_edge=False, pad_edge=False)
    for column in ("point" if summary.axes else "age", "slice", "status", "attempts", "duration", "held-out C", "final loss", "reason"):
        if column == "reason" and wide:
            table.add_column(column, overflow="fold")
        elif column == "reason":
            table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=40)
        else:
            table.add_column(column, justify="left" if column == "status" else "right")
    for part in summary.slices():
        c_index = part.metrics.heldout_c_index if part.metrics else None
        loss = part.metrics.final_loss if part.metrics else None
        table.add_row(
            short_label(part.point, part.age), part.slice_label if part.age is not None else "", styled(part.status),
            str(part.attempts or ""), fmt_elapsed(part.duration_s),
            format_metric(c_index), format_metric(loss),
            (part.status_reason or "") if wide else (part.status_reason or "")[:50],
        )
    return table


def print_result(console: Console, result: LocalRunResult, data_dir: Path) -> None:
    summary_file = result.run_dir / "summary.json"
    unit = "(age, slice)"
    if summary_file.exists():
        summary = Summary.model_validate_json(summary_file.read_bytes())
        console.print(results_table(summary, wide=not console.is_terminal))
        if summary.axes:
            unit = f"({jobs_unit(summary).replace('one per point', 'point')})"
    for note in result.notifications:
        console.print(Panel(note["message"], title=f"SNS: {note['subject']}", expand=False))
    if result.error == "ManifestRejected":
        console.print("[bold red]The manifest was rejected; no job was submitted.[/bold red]")
    elif result.collated:
        c = result.collated
        console.print(
            f"[bold]{c.succeeded} of {c.total} {unit} jobs succeeded, {c.failed} failed[/bold] "
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


def print_failed_logs(console: Console, stack: LocalCloud, result: LocalRunResult) -> None:
    """Where each failed job's log files are (one per attempt, oldest first)."""
    for row in result.rows:
        if row.status == "FAILED" and row.job_id:
            for path in stack.batch.log_paths(row.job_id):
                console.print(f"{row.label} failed; its log: {path}", highlight=False, markup=False, soft_wrap=True)


def check_simulated_ages(console: Console, manifest: Path, ages: list[int]) -> None:
    """A --simulate-* age the manifest does not run would be silently ignored: exit 2 instead.

    An invalid manifest is left to the run itself (ValidateManifest rejects it with every problem).
    """
    if not ages:
        return
    try:
        wanted = parse_manifest(read_manifest_file(manifest), manifest.name).age_values()
    except AgesweepError:
        return
    unknown = sorted(set(ages) - set(wanted))
    if unknown:
        console.print(
            f"[bold red]error:[/] --simulate-failure / --simulate-spot-interruption age {', '.join(map(str, unknown))} "
            f"is not in {manifest.name} (its ages: {ages_text(wanted)})",
            highlight=False,
        )
        raise typer.Exit(ExitCode.INVALID)


def ages_text(ages: list[int]) -> str:
    """40..79 for a contiguous run of ages, else the list."""
    ordered = sorted(ages)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}..{ordered[-1]}"
    return ", ".join(map(str, ordered))


def follow_run(console: Console, stack: LocalCloud, manifest: Path, workers: int) -> LocalRunResult:
    """Run the manifest; a terminal gets a live table that fits it, a pipe one line per status change."""
    from agesweep.local.session import run_manifest

    if not console.is_terminal:
        return run_manifest(stack, manifest, on_progress=ChangeLines(console))
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        return run_manifest(
            stack, manifest, on_progress=lambda p: live.update(progress_view(p, workers, (console.size.width, console.size.height)))
        )


def print_serve_panel(console: Console, stack: LocalCloud, data_dir: Path) -> None:
    """The names, and the lines that make the aws CLI and `agesweep --stack` reach this endpoint."""
    from agesweep.local.plumbing import FAKE_CREDENTIALS

    stack_name = stack.pseudo.stack_name
    (stack.workdir / "endpoint.json").write_text(json.dumps({**stack.names, "stack": stack_name}, indent=2), encoding="utf-8")
    console.print(Panel(
        f"endpoint  {stack.endpoint}\nstack     {stack_name}\nbucket    {stack.bucket}\nstate machine {stack.state_machine_arn}\n"
        f"job queue {stack.job_queue_arn}\ntopic     {stack.topic_arn}",
        title="agesweep local --serve", expand=False,
    ))
    credentials = " ".join(f"{key}={value}" for key, value in FAKE_CREDENTIALS.items())
    console.print("In another terminal:", markup=False)
    console.print(
        f"export AWS_ENDPOINT_URL={stack.endpoint} {credentials} AWS_DEFAULT_REGION={stack.pseudo.region}\n"
        f"aws s3 cp m.yaml s3://{stack.bucket}/manifests/m.yaml\n"
        f"agesweep submit m.yaml --stack {stack_name}    # or: agesweep watch/status/runs/retry … --stack {stack_name}\n"
        f"or save it on the local EFS: cp m.yaml {data_dir / 'manifests'}/",
        markup=False, highlight=False, soft_wrap=True,
    )
    console.print(f"[dim]names also in {stack.workdir / 'endpoint.json'}; each run that ends is saved under "
                  f"{stack.workdir / 'runs'}/<run_id>/; Ctrl-C stops[/dim]")


def serve_until_interrupted(console: Console, stack: LocalCloud, foreground: list[str]) -> None:
    """Print SNS messages and save every run that ends, until Ctrl-C. The --simulate-* switches
    apply to the first run only (the foreground one, or the first to end): a retry can succeed."""
    from agesweep.local.serving import RunSaver

    saver = RunSaver(stack, already_saved=foreground)
    if foreground:
        saver.drop_simulations()
    try:
        while True:
            for folder in saver.poll():
                console.print(f"run {folder.name} ended: saved in {folder}", markup=False, highlight=False)
            for note in stack.drain_notifications():
                console.print(Panel(note["message"], title=f"SNS: {note['subject']}", expand=False))
                saver.file_notification(note)
            time.sleep(1.0)
    except KeyboardInterrupt:
        console.print("stopped")


def local(
    manifest: Annotated[
        Path | None, typer.Argument(help="Run manifest (YAML or JSON). Omit with --serve.", exists=True, dir_okay=False)
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Local folder mounted as the jobs' /data; its input/ must hold the trainer's inputs "
                     "(default: <workdir>/data, where synthetic demo inputs are generated on first use)."),
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Generate synthetic demo inputs into --data's input/ if it lacks them.")
    ] = False,
    workdir: Annotated[Path, typer.Option(help="Where runs, logs and SNS messages are kept.")] = DEFAULT_WORKDIR,
    workers: Annotated[
        int, typer.Option(help="Batch jobs run at once (default 0 = auto: this machine's CPU count).", show_default=False)
    ] = 0,
    serve: Annotated[bool, typer.Option(help="Keep the endpoint up for the aws CLI until Ctrl-C.")] = False,
    parameter: Annotated[
        list[str] | None,
        typer.Option(
            "--parameter", metavar="NAME=VALUE",
            help="A template parameter, as `sam deploy --parameter-overrides` takes it (repeatable), "
                 "e.g. AllowedSecretArns=arn:aws:secretsmanager:…",
        ),
    ] = None,
    port: Annotated[
        int, typer.Option(help="Port of the local endpoint (default 0 = a free one).", show_default=False)
    ] = 0,
    simulate_spot_interruption: Annotated[
        list[int] | None,
        typer.Option("--simulate-spot-interruption", help="Reclaim the host of this age's first attempt (repeatable; the first run only)."),
    ] = None,
    simulate_failure: Annotated[
        list[int] | None,
        typer.Option(
            "--simulate-failure", help="Make this age's job exit non-zero (repeatable; the first run only, so its retry can succeed)."
        ),
    ] = None,
    chaos_reclaim_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Reclaim this share of spot attempts at a random point (SIGTERM, then SIGKILL).")
    ] = 0.0,
    chaos_kill_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Hard-kill this share of attempts at a random point (SIGKILL, no warning).")
    ] = 0.0,
    chaos_seed: Annotated[
        int, typer.Option(help="Seed of the --chaos-* draws (default 0): a seed replays the same chaos.", show_default=False)
    ] = 0,
) -> None:
    """Run a sweep end to end on this machine: the same template.yaml and sweep.asl.json that
    `sam deploy` ships, on a local moto server, with the real Lambda handlers and each Batch job's
    real command as a local process (/data mapped to --data).

    The manifest is put into the local bucket under manifests/ and EventBridge starts the run,
    as in AWS. Exit codes: 0 every age succeeded, 1 some failed, 2 the manifest was invalid
    (no job started) or --data lacks the trainer's inputs.

    One function instead of a sweep: `agesweep local invoke FUNCTION -e events/EVENT.json` (like
    `sam local invoke`, without Docker; see `agesweep local invoke --help`).
    """
    from agesweep.local.cloud import Chaos, LocalCloud, SimulatedFailure, SpotInterruption
    from agesweep.local.session import RunDidNotStart

    console = out()  # piped: 240 columns, never cut to 80
    if manifest is None and not serve:
        console.print("[red]Give a MANIFEST, or --serve to keep the endpoint up.[/red]")
        raise typer.Exit(ExitCode.INVALID)
    if manifest is not None:
        check_simulated_ages(console, manifest, [*(simulate_failure or []), *(simulate_spot_interruption or [])])
    workers = workers or os.cpu_count() or 1
    parameters = template_parameters(console, parameter or [])
    data_dir = (data or workdir / "data").resolve()
    if runs_the_trainer(manifest):
        ensure_input_data(data_dir, console, synthetic=synthetic or data is None)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "manifests").mkdir(exist_ok=True)  # the EFS watcher's folder (/data/manifests/)
    stack = LocalCloud(
        workdir=workdir.resolve(),
        data_dir=data_dir,
        workers=workers,
        spot_interruptions=[SpotInterruption(age) for age in simulate_spot_interruption or []],
        simulated_failures=[SimulatedFailure(age) for age in simulate_failure or []],
        port=port or None,
        parameters=parameters,
        chaos=Chaos(chaos_reclaim_share, chaos_kill_share, chaos_seed) if chaos_reclaim_share or chaos_kill_share else None,
    )
    with stack:
        if serve:
            print_serve_panel(console, stack, data_dir)
        foreground: list[str] = []
        if manifest is not None:
            try:
                result = follow_run(console, stack, manifest, workers)
            except RunDidNotStart as error:
                console.print(f"[bold red]{error}[/bold red]")
                raise typer.Exit(ExitCode.INVALID) from error
            print_result(console, result, data_dir)
            print_failed_logs(console, stack, result)
            if not serve:
                raise typer.Exit(result.exit_code)
            foreground.append(result.run_id)
        serve_until_interrupted(console, stack, foreground)


def invoke(
    function: Annotated[str, typer.Argument(help="Logical id of a function in template.yaml, e.g. ValidateManifestFunction.")],
    event: Annotated[
        Path, typer.Option("--event", "-e", help="The event, a JSON file (events/*.json).", exists=True, dir_okay=False)
    ],
    manifest: Annotated[
        Path | None,
        typer.Option(help="Put this manifest under the event's bucket/key first (ValidateManifest events). "
                     "Default: an event of the sample bucket gets events/manifests/<key's file name>, else demo.yaml.",
                     exists=True, dir_okay=False),
    ] = None,
    workdir: Annotated[Path, typer.Option(help="Where the local stack keeps lambda.log.")] = DEFAULT_WORKDIR,
) -> None:
    """Invoke one function of template.yaml once, like `sam local invoke FUNCTION -e EVENT`, with no
    container engine: local mode's stack starts, the real handler runs in this process with the
    function's environment (its names resolved to the local stack), the handler's JSON return value
    is printed on stdout and its log lines on stderr.

    The local data folder is <workdir>/data, with the synthetic demo inputs made on first use (the
    validate step checks the manifest's input holds the files the job reads).

    A ValidateManifest event (bucket, key, version_id) must name a manifest version that exists:
    the manifest (--manifest, or for the sample bucket of events/ the seed manifest) is put under
    its key and version_id becomes the version created. StartRunFunction really starts an execution
    on the local stack, stopped when the command exits.

    Exit codes: 0 the handler returned, 1 it raised ({"errorType", "errorMessage"} on stdout, as
    sam prints), 2 unknown function or unreadable event.
    """
    from agesweep.local import invoke as invocation
    from agesweep.local.cloud import LocalCloud

    try:
        payload = json.loads(event.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"error: {event} is not a JSON event: {error}", file=sys.stderr)
        raise typer.Exit(ExitCode.INVALID) from error
    workdir = workdir.resolve()
    # the default data folder, as `agesweep local` uses it: the validate step's pre-flight finds the inputs there
    ensure_input_data(workdir / "data", Console(stderr=True, highlight=False), synthetic=True)
    with LocalCloud(workdir=workdir, data_dir=workdir / "data", workers=1) as stack:
        try:
            result = invocation.invoke(stack, function, invocation.seed_manifest(stack, payload, manifest))
        except invocation.UnknownFunction as error:
            print(f"error: {error}", file=sys.stderr)
            raise typer.Exit(ExitCode.INVALID) from error
        sys.stderr.write(result.log)
        print(json.dumps(result.payload, indent=2))
    raise typer.Exit(ExitCode.SOME_FAILED if result.errored else ExitCode.OK)
