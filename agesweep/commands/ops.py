"""`agesweep submit | status | watch | runs | retry | cancel | logs`: operate a deployed stack.

The stack's resources come from its CloudFormation Outputs (`--stack`, env AGESWEEP_STACK); the
endpoint from boto3's usual configuration, so `AWS_ENDPOINT_URL=<agesweep local --serve endpoint>`
with `--stack agesweep-local` drives local mode the same way. The logic lives in agesweep.operations.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agesweep.manifest import EFS_ROOT
from agesweep.operations.cancel import CancelResult, cancel_run, unfinished_jobs
from agesweep.operations.deployment import DEFAULT_STACK, DeployedStack, discover_stack
from agesweep.operations.errors import OpsError, explain
from agesweep.operations.logs import log_lines
from agesweep.operations.retry import retry_manifests
from agesweep.operations.runs import list_runs
from agesweep.operations.status import RunStatus, run_status, watch_run
from agesweep.operations.stuck_jobs import DEFAULT_STUCK_AFTER_S
from agesweep.operations.submit import DEFAULT_START_WAIT_S, Submission, efs_local_path, plan_locally, read_manifest, submit_manifest
from agesweep.commands.manifest import _err, _fail, _out
from agesweep.console import age_table, fmt_duration, fmt_time, styled
from agesweep.errors import AgesweepError
from agesweep.exit_codes import ExitCode

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
    typer.Option("--force", help="Upload even when the same bytes are already the current version (starts a new run)."),
]


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """One red line and exit 2 for anything the operator can fix; never a traceback."""
    try:
        yield
    except OpsError as exc:
        _err().print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except (BotoCoreError, ClientError) as exc:  # a call outside operations' aws_errors(): same one line
        _err().print(f"[bold red]error:[/] {explain(exc)}", highlight=False)
        raise typer.Exit(ExitCode.INVALID) from None


def _stack(name: str, region: str | None) -> DeployedStack:
    return discover_stack(name, region)


# ------------------------------------------------------------------------------------ submit
def _print_submission(sub: Submission, stack: DeployedStack) -> None:
    out = _out()
    if sub.uploaded:
        out.print(f"[bold green]✓[/] started run [bold]{sub.run_id}[/]")
    else:
        out.print(
            f"[yellow]=[/] s3://{sub.bucket}/{sub.key} already holds these bytes: its run is [bold]{sub.run_id}[/] "
            "(nothing uploaded; --force starts a new run)"
        )
    out.print(f"  execution {sub.execution_arn}", markup=False)
    out.print(f"  manifest  s3://{sub.bucket}/{sub.key} version {sub.version_id} sha256 {sub.sha256[:12]}…", markup=False)
    out.print(f"  follow    agesweep watch {sub.run_id} --stack {stack.name}", markup=False)


def _submit_bytes(stack: DeployedStack, raw: bytes, name: str, source: str, force: bool, wait: float) -> Submission:
    return submit_manifest(stack, raw, name, source=source, force=force, wait_s=wait)


def _validated(raw: bytes, name: str, shown_as: Path, as_json: bool) -> None:
    try:
        plan_locally(raw, name)
    except AgesweepError as exc:
        _fail(shown_as, exc, as_json)


def submit(
    manifest: Annotated[Path | None, typer.Argument(help="Manifest file (YAML or JSON) on this machine.", dir_okay=False, show_default=False)] = None,
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    efs: Annotated[
        str | None,
        typer.Option("--efs", help="Instead of MANIFEST: a manifest on EFS, by its path as jobs see it (/data/manifests/x.yaml)."),
    ] = None,
    efs_mount: Annotated[Path, typer.Option("--efs-mount", help="Where the EFS file system (/data) is mounted on this machine.")] = Path(EFS_ROOT),
    force: Force = False,
    wait: Wait = DEFAULT_START_WAIT_S,
    as_json: AsJson = False,
) -> None:
    """Validate a manifest locally, upload it, print the run it started.

    The manifest goes to the stack bucket's manifests/ prefix.
    The upload is what starts a run (S3 → EventBridge → StartRun), exactly as `aws s3 cp` would.
    A run is one manifest version: EventBridge duplicates of the same version are no-ops, and
    submitting bytes identical to the current object at manifests/<name> reports that version's
    run instead of uploading again (--force uploads anyway: a new version, a new run).
    With --efs, the manifest is read from the EFS mount and uploaded with metadata source=efs:<path>.

    Exit codes: 0 started (or already started), 2 invalid manifest or AWS problem (nothing started).
    """
    with _errors():
        if (manifest is None) == (efs is None):
            raise OpsError("give a MANIFEST file or --efs PATH (one of them)")
        if efs is not None:
            path, source = efs_local_path(efs, efs_mount), f"efs:{efs}"
        else:
            assert manifest is not None
            path, source = manifest, f"file:{manifest.name}"
        raw = read_manifest(path)
        _validated(raw, path.name, path, as_json)
        found = _stack(stack, region)
        sub = _submit_bytes(found, raw, path.name, source, force, wait)
    if as_json:
        print(json.dumps(sub.to_dict(), indent=2))
    else:
        _print_submission(sub, found)


# ------------------------------------------------------------------------------------ status / watch
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


def _stuck_view(status: RunStatus) -> list[Any]:
    if not status.stuck:
        return []
    parts: list[Any] = [Text(f"⚠ {len(status.stuck)} job(s) RUNNABLE for too long", style="bold yellow")]
    for job in status.stuck:
        asks = f"{job.vcpus:g} vCPU" if job.vcpus else "? vCPU"
        if job.memory_mib:
            asks += f", {job.memory_mib} MiB"
        parts.append(Text(f"  age {job.age} ({job.job_id}) waiting {fmt_duration(job.waiting_s)}, asks {asks}; likely:"))
        parts.extend(Text(f"    - {cause}") for cause in job.causes)
    table = Table(title="compute environments (queue order)", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("name", "type", "state", "status", "vCPUs min/desired/max", "instance types", "reason"):
        table.add_column(column)
    for ce in status.compute_environments:
        table.add_row(
            ce.name, f"{ce.type or ''} {ce.capacity or ''}".strip(), ce.state or "", ce.status or "",
            "/".join("" if v is None else str(v) for v in (ce.min_vcpus, ce.desired_vcpus, ce.max_vcpus)),
            ", ".join(ce.instance_types), Text(ce.status_reason or ""),
        )
    parts.append(table)
    return parts


def status_view(status: RunStatus) -> Group:
    """Header, one row per age, stuck jobs, and the outcome once the run has ended."""
    parts: list[Any] = [_header(status)]
    if status.rows:
        parts.append(age_table(status.rows, details=True, log_link=status.log_url))
    elif status.status == "RUNNING":
        parts.append("[dim]validating the manifest…[/dim]")
    parts.extend(_stuck_view(status))
    if status.finished:
        if status.collated:
            c = status.collated
            parts.append(f"[bold]{c.succeeded} of {c.total} (age, slice) pairs succeeded, {c.failed} failed[/bold]")
        if status.error or status.cause:
            parts.append(Text(f"{status.status}: {status.error or ''} {(status.cause or '')[:500]}".rstrip(), style="red"))
        if status.counts.get("FAILED"):
            parts.append(Text(f"failed ages' logs: agesweep logs {status.run_id} --age AGE; rerun them: agesweep retry {status.run_id}", style="dim"))
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
    ended × the ages left ÷ the ages that run at once.

    Exit codes: 0 succeeded (no age failed), 1 failed, aborted, timed out or an age failed,
    2 unknown stack/run or AWS problem, 3 still running.
    """
    with _errors():
        snapshot = run_status(_stack(stack, region), run, stuck_after)
    if as_json:
        print(json.dumps(snapshot.to_dict(), indent=2, default=str))
    else:
        _out().print(status_view(snapshot))
    raise typer.Exit(snapshot.exit_code)


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
    aborted (or an age failed), 2 unknown stack/run or AWS problem.
    """
    out = _out()
    last: dict[int, str] = {}
    final: RunStatus | None = None
    with _errors():
        found = _stack(stack, region)
        snapshots = watch_run(found, run, interval, stuck_after)
        if out.is_terminal and not as_json:
            with Live(console=out, refresh_per_second=4, transient=False) as live:
                for final in snapshots:
                    live.update(status_view(final))
        else:
            last_execution = ""
            for final in snapshots:
                changed = {row.age: row.status for row in final.rows if last.get(row.age) != row.status}
                if as_json:
                    if changed or final.status != last_execution:
                        print(json.dumps(final.to_dict(), default=str), flush=True)
                else:
                    for row in final.rows:
                        if row.age in changed:
                            reason = f" ({row.status_reason})" if row.status_reason and row.status == "FAILED" else ""
                            out.print(f"{fmt_time(time.time())} age {row.age}: {last.get(row.age, '-')} → {row.status}{reason}", markup=False)
                last.update(changed)
                last_execution = final.status
            if final is not None and not as_json:
                out.print(status_view(final))
    assert final is not None
    raise typer.Exit(final.exit_code)


# ------------------------------------------------------------------------------------ runs
def runs(
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many of the newest runs.")] = 20,
    as_json: AsJson = False,
) -> None:
    """List the stack's recent runs with outcome and duration, newest first.

    Each run: status, start, duration and — once collated — how many (age, slice) pairs
    succeeded and failed, of how many (from runs/<run_id>/summary.json).

    Exit codes: 0 listed, 2 unknown stack or AWS problem.
    """
    with _errors():
        found = _stack(stack, region)
        listed = list_runs(found, limit)
    if as_json:
        print(json.dumps([r.to_dict() for r in listed], indent=2))
        return
    out = _out()
    if not listed:
        out.print(f"no runs yet in stack {found.name}: start one with `agesweep submit MANIFEST --stack {found.name}`", markup=False)
        return
    table = Table(title=f"runs of {found.name} (newest first)", title_justify="left", show_edge=False, pad_edge=False)
    for column, justify in (("run id", "left"), ("status", "left"), ("started", "left"), ("duration", "right"),
                            ("ok", "right"), ("failed", "right"), ("of", "right")):
        table.add_column(column, justify=justify, no_wrap=column == "run id")  # type: ignore[arg-type]
    for r in listed:
        def count(value: int | None) -> str:
            return "" if value is None else str(value)
        table.add_row(r.run_id, styled(r.status), fmt_time(r.started_at), fmt_duration(r.duration_s),
                      count(r.succeeded), count(r.failed), count(r.total))
    out.print(table)


# ------------------------------------------------------------------------------------ retry
def retry(
    run: Run,
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    force: Force = False,
    wait: Wait = DEFAULT_START_WAIT_S,
    as_json: AsJson = False,
) -> None:
    """Rerun only what failed: submit the run's retry manifest.

    Collation writes runs/<run_id>/retry-manifest.yaml when the run ends: the original manifest narrowed to the failed (age,
    slice) pairs, named <run_name>-retry. It is validated and submitted like `submit` (uploaded
    as manifests/<run_name>-retry.yaml), so retrying the same run twice starts one run. When
    ages failed different slices it holds several manifests; each is submitted.

    Exit codes: 0 submitted, or nothing failed (nothing to do); 2 run still running, no retry
    manifest, invalid retry manifest, unknown stack/run or AWS problem.
    """
    submitted: list[Submission] = []
    with _errors():
        found = _stack(stack, region)
        documents = retry_manifests(found, run)
        if not documents:
            if as_json:
                print(json.dumps({"run_id": run, "submitted": []}, indent=2))
            else:
                _out().print(f"nothing to retry: no age of run {run} failed", markup=False)
            return
        for name, raw in documents:
            _validated(raw, name, Path(name), as_json)
        for name, raw in documents:
            submitted.append(_submit_bytes(found, raw, name, f"retry:{run}", force, wait))
    if as_json:
        print(json.dumps({"run_id": run, "submitted": [s.to_dict() for s in submitted]}, indent=2))
        return
    for sub in submitted:
        _print_submission(sub, found)


# ------------------------------------------------------------------------------------ cancel
def cancel(
    run: Run,
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Recorded on the execution and on each terminated job.")] = "Cancelled by agesweep cancel",
    as_json: AsJson = False,
) -> None:
    """Stop a run: its execution, then its queued and running jobs.

    StopExecution first, so no further age is submitted (the execution ends ABORTED); then
    TerminateJob for each of the run's jobs that has not finished (queued jobs are cancelled,
    running ones stopped, an array job's children with it). Terminated jobs end FAILED.
    Outputs already written stay. An aborted run has no retry manifest: submit the manifest
    again with --force to rerun it.

    Asks for confirmation unless --yes. Exit codes: 0 cancelled (or nothing left to cancel),
    1 not confirmed, 2 unknown stack/run or AWS problem.
    """
    with _errors():
        found = _stack(stack, region)
        execution, unfinished = unfinished_jobs(found, run)
        run_id = execution.run_id
        if not execution.running and not unfinished:
            if as_json:
                print(json.dumps(CancelResult(run_id, execution.status, stopped=False).to_dict(), indent=2))
            else:
                _out().print(f"run {run_id} already ended ({execution.status}); nothing to cancel", markup=False)
            return
        if not yes:
            ages = ", ".join(f"{row.age} ({row.status})" for row in unfinished) or "none submitted yet"
            question = (
                f"Cancel run {run_id} ({execution.status}): stop the execution and terminate "
                f"{len(unfinished)} unfinished job(s) — ages {ages}?"
            )
            if not typer.confirm(question, default=False, err=True):
                _err().print("not cancelled", highlight=False)
                raise typer.Exit(1)
        result = cancel_run(found, run, reason)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    out = _out()
    out.print(f"[bold]run {result.run_id}[/]: " + ("execution stopped (ABORTED)" if result.stopped else f"execution already {result.execution_status}"))
    for job in result.terminated:
        out.print(f"  terminated age {job.age} job {job.job_id} (was {job.status})", markup=False)
    if not result.terminated:
        out.print("  no job was running or queued", markup=False)


# ------------------------------------------------------------------------------------ logs
def logs(
    run: Run,
    age: Annotated[int, typer.Option("--age", help="The age whose job's log to show.", show_default=False)],
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    index: Annotated[int | None, typer.Option("--index", help="Array child (slice) index, for ages run as array jobs.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls with -f.")] = 2.0,
    timestamps: Annotated[bool, typer.Option("--timestamps", help="Prefix each line with its time.")] = False,
) -> None:
    """Print an age's job log (CloudWatch Logs); -f follows it until the job ends.

    Read from the stack's JobLogGroupName, every attempt in order; a retried job's attempts
    are separated by a header line on stderr.

    With -f, follows the job until it ends (SUCCEEDED or FAILED). Exit codes: 0 printed,
    2 unknown stack/run/age, age not submitted yet, or AWS problem.
    """
    err = _err()
    current: str | None = None
    printed = 0
    with _errors():
        found = _stack(stack, region)
        for line in log_lines(found, run, age, index=index, follow=follow, poll_s=interval):
            if line.stream != current:
                err.print(f"── age {age} attempt {line.attempt} · {line.stream}", style="dim", highlight=False)
                current = line.stream
            prefix = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(line.timestamp))} " if timestamps else ""
            print(prefix + line.message, flush=True)
            printed += 1
    if not printed:
        err.print(f"no log lines for age {age} yet (the stream appears once its container writes output)", highlight=False)


def _help(command: Any) -> str:
    """The docstring with each paragraph on one line, so --help wraps it to the terminal."""
    import inspect

    paragraphs = inspect.cleandoc(command.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def register(app: typer.Typer) -> None:
    for name, command in (("submit", submit), ("status", status), ("watch", watch), ("runs", runs),
                          ("retry", retry), ("cancel", cancel), ("logs", logs)):
        app.command(name, help=_help(command))(command)
