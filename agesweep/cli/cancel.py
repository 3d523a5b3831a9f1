"""`agesweep cancel`: stop a run — its execution, then its queued and running jobs."""

from __future__ import annotations

from typing import Annotated

import typer

from agesweep.cli.options import AsJson, Region, Run, StackName
from agesweep.cli.output import err, operator_errors, out, print_json
from agesweep.exit_codes import ExitCode
from agesweep.operations.cancel import DEFAULT_REASON, CancelResult, cancel_run, unfinished_jobs
from agesweep.operations.deployment import DEFAULT_STACK, discover_stack
from agesweep.operations.executions import Execution
from agesweep.tracking import AgeProgress


def _confirm(execution: Execution, unfinished: list[AgeProgress]) -> None:
    """Ask on stderr; declined: nothing is cancelled, exit 0 (1 means "ages failed")."""
    ages = ", ".join(f"{row.short} ({row.status})" for row in unfinished) or "none submitted yet"
    question = (
        f"Cancel run {execution.run_id} ({execution.status}): stop the execution and terminate "
        f"{len(unfinished)} unfinished job(s) — ages {ages}?"
    )
    if not typer.confirm(question, default=False, err=True):
        err().print("nothing cancelled: the run goes on", highlight=False)
        raise typer.Exit(ExitCode.OK)


def _print_result(result: CancelResult) -> None:
    console = out()
    stopped = "execution stopped (ABORTED)" if result.stopped else f"execution already {result.execution_status}"
    console.print(f"[bold]run {result.run_id}[/]: " + stopped)
    for job in result.terminated:
        console.print(f"  terminated {job.label or f'age {job.age}'} job {job.job_id} (was {job.status})", markup=False)
    if not result.terminated:
        console.print("  no job was running or queued", markup=False)


def cancel(
    run: Run,
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Recorded on the execution and on each terminated job.")] = DEFAULT_REASON,
    as_json: AsJson = False,
) -> None:
    """Stop a run: its execution, then its queued and running jobs.

    StopExecution first, so no further age is submitted (the execution ends ABORTED); then
    TerminateJob for each of the run's jobs that has not finished (queued jobs are cancelled,
    running ones stopped, an array job's children with it). Terminated jobs end FAILED.
    Outputs already written stay. An aborted run has no retry manifest: submit the manifest
    again with --force to rerun it.

    Asks for confirmation unless --yes. Exit codes: 0 cancelled, nothing left to cancel, or
    declined at the prompt (nothing cancelled), 2 unknown stack/run or AWS problem.
    """
    with operator_errors():
        found = discover_stack(stack, region)
        execution, unfinished = unfinished_jobs(found, run)
        if not execution.running and not unfinished:
            if as_json:
                print_json(CancelResult(execution.run_id, execution.status, stopped=False).to_dict())
            else:
                out().print(f"run {execution.run_id} already ended ({execution.status}); nothing to cancel", markup=False)
            return
        if not yes:
            _confirm(execution, unfinished)
        result = cancel_run(found, run, reason)
    if as_json:
        print_json(result.to_dict())
        return
    _print_result(result)
