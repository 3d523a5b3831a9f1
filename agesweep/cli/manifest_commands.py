"""`agesweep validate`, `agesweep plan`, `agesweep schema`: check a manifest before anything runs.

No AWS is needed: the run id is derived from the file's name and content, the stack config from the
env (BUCKET_NAME, JOB_QUEUE_ARN, AGE_MIN, ...) or its defaults. `--preflight` adds the live checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agesweep.cli.output import err, fail_manifest, operator_errors, out, print_json
from agesweep.contracts import Plan, PlanItem
from agesweep.errors import AgesweepError
from agesweep.manifest import manifest_json_schema
from agesweep.manifest_source import read_manifest_file
from agesweep.operations.submit import plan_locally
from agesweep.settings import Settings

ManifestFile = Annotated[
    Path, typer.Argument(help="Manifest file (YAML or JSON).", show_default=False, dir_okay=False)
]
Preflight = Annotated[
    bool,
    typer.Option(
        "--preflight",
        help="Also check the live job queue, job definition, ECR image and s3:// inputs (needs AWS credentials).",
    ),
]


def plan_file(path: Path, preflight: bool = False) -> Plan:
    """Validate and plan a local file the way the Lambda would, minus the S3 read."""
    raw = read_manifest_file(path)
    checker = None
    if preflight:
        from agesweep.operations.deployment import new_session
        from agesweep.preflight import Preflight as Checker

        checker = Checker.from_session(new_session())
    return plan_locally(raw, path.name, key=str(path), preflight=checker)


def _plan_or_exit(path: Path, preflight: bool, as_json: bool) -> Plan:
    """The plan, or exit 2: the manifest's problems, or one line for an AWS problem of --preflight."""
    with operator_errors():
        try:
            return plan_file(path, preflight)
        except AgesweepError as exc:
            fail_manifest(path, exc, as_json)


def validate(
    manifest: ManifestFile,
    preflight: Preflight = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print {valid, problems} as JSON.")] = False,
) -> None:
    """Check a manifest: schema, AWS limits and paths; every problem at once, one per line.

    Each problem reads `field.path: what is wrong (what is allowed)`.
    Exit codes: 0 valid, 2 invalid (nothing would be submitted).
    """
    plan = _plan_or_exit(manifest, preflight, as_json)
    totals = plan.totals
    if as_json:
        print_json({"valid": True, "problems": [], "warnings": plan.warnings, "jobs": totals.jobs})
        return
    points = f"{totals.points:,} points ({' x '.join([*plan.axes, *(['ages'] if totals.ages else [])])})"
    out().print(
        f"[bold green]✓[/] {manifest}: valid — run {plan.run_name}, {points if plan.axes else f'{totals.ages} ages'}, "
        f"{totals.jobs} jobs ({totals.child_jobs} Batch jobs incl. array children)"
    )
    for warning in plan.warnings:
        err().print(f"warning: {warning}", markup=False)


def slices_text(item: PlanItem) -> str:
    if item.array_size:
        return f"{item.start_index}..{item.end_index} by {item.slice_size}"
    return ", ".join(f"{s}..{e}" for s, e in item.slice_spans())


def resource_text(item: PlanItem, kind: str, default: str) -> str:
    """The item's VCPU / MEMORY override, else `default`."""
    for req in item.container_overrides.ResourceRequirements or []:
        if req.Type == kind:
            return req.Value
    return default


def definition_resources(plan: Plan, settings: Settings) -> tuple[str, str]:
    """The vCPUs and memory a job gets without an override: an inline container's own, else the
    stack definition's (marked *)."""
    if plan.workload == "container" and plan.job_definition_request:
        asked = {r["Type"]: r["Value"] for r in plan.job_definition_request["ContainerProperties"].get("ResourceRequirements", [])}
        return asked.get("VCPU", "?"), asked.get("MEMORY", "?")
    return f"{settings.default_vcpus}*", f"{settings.default_memory_mib}*"


def plan_table(plan: Plan, settings: Settings) -> Table:
    table = Table(title=f"Plan for {plan.run_name} (run id {plan.run_id})", title_justify="left")
    vcpus, memory = definition_resources(plan, settings)
    for column in ("point" if plan.axes else "age", "job name", "array size", "slices", "vCPU", "memory MiB", "output folder"):
        table.add_column(column, justify="left" if column in {"job name", "slices", "output folder"} else "right", overflow="fold")
    for item in plan.items:
        table.add_row(
            str(item.age) if item.age is not None else item.label(),
            item.job_name,
            str(item.array_size or "-"),
            slices_text(item) if plan.workload == "trainer" else "-",
            resource_text(item, "VCPU", vcpus),
            resource_text(item, "MEMORY", memory),
            item.output_folder,
        )
    return table


def _print_totals(plan: Plan) -> None:
    console, totals = out(), plan.totals
    cost = totals.cost_estimate_usd
    if plan.workload != "container" and any(not item.container_overrides.ResourceRequirements for item in plan.items):
        console.print("* the job definition's value (no override)", markup=False)
    registered = {"container": " (registered from job.container)", "trainer": " (new revision with the manifest's image)"}
    console.print(
        f"Jobs: {totals.jobs} ({totals.array_jobs} array jobs, {totals.child_jobs} Batch jobs in all) · "
        f"queue {plan.job_queue} · definition {plan.job_definition.ref}"
        + (registered.get(plan.workload, "") if plan.register_job_definition else ""),
        markup=False,
    )
    if plan.map_mode == "DISTRIBUTED":
        console.print(f"Map: Distributed (items in {plan.items_key}, one child execution each)", markup=False)
    console.print(
        f"Step Functions: ~{totals.state_transitions:,} state transitions, ~{totals.history_events:,} "
        f"history events of {totals.history_limit:,}; plan payload {(totals.payload_bytes or 0) / 1024:.1f} KiB",
        markup=False,
    )
    console.print(
        f"Estimated cost: Step Functions ${cost.step_functions:.4f}; compute at most "
        f"${cost.compute_spot_at_timeout:,.2f} spot / ${cost.compute_on_demand_at_timeout:,.2f} on-demand "
        f"({cost.vcpu_hours_at_timeout:,} vCPU-hours)",
        markup=False,
    )
    console.print(totals.estimate_note, markup=False, style="dim")


def plan(
    manifest: ManifestFile,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan dict the state machine receives.")] = False,
    preflight: Preflight = False,
) -> None:
    """Show what a manifest would run: one row per Batch job, then totals and a cost estimate.

    Exit codes: 0 planned, 2 invalid manifest.
    """
    result = _plan_or_exit(manifest, preflight, as_json)
    if as_json:
        print_json(result.to_state())
        return
    out().print(plan_table(result, Settings.from_env()))
    _print_totals(result)
    for warning in result.warnings:
        err().print(f"warning: {warning}", markup=False)


def schema() -> None:
    """Print the manifest's JSON Schema (for editors: yaml-language-server, VS Code)."""
    print_json(manifest_json_schema())
