"""`agesweep validate`, `agesweep plan`, `agesweep schema`: check a manifest before anything runs.

No AWS is needed: the run id is derived from the file's name and content, the stack config from the
env (BUCKET_NAME, JOB_QUEUE_ARN, AGE_MIN, ...) or its defaults. `--preflight` adds the live checks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agesweep.errors import AgesweepError, ManifestInvalid
from agesweep.exit_codes import ExitCode
from agesweep.manifest import MAX_MANIFEST_BYTES, manifest_json_schema
from agesweep.contracts import PlanItem
from agesweep.plan import validate_and_plan
from agesweep.runs import run_id_for
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


def _out() -> Console:
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:  # piped: never cut job names or paths to 80 columns
        console.width = 240
    return console


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestInvalid([f"manifest: cannot read {path}: {exc.strerror or exc} (a readable file)"]) from None


def plan_file(path: Path, preflight: bool = False) -> dict[str, Any]:
    """Validate and plan a local file the way the Lambda would, minus the S3 read."""
    raw = _read(path)
    run_id = run_id_for("local", path.name, hashlib.sha256(raw).hexdigest())
    checker = None
    if preflight:
        from agesweep.preflight import Preflight as Checker

        checker = Checker.from_session()
    return validate_and_plan(
        raw,
        source_name=path.name,
        stack=Settings.from_env(),
        run_id=run_id,
        manifest_location={"key": str(path)},
        preflight=checker,
    ).to_state()


def _fail(path: Path, exc: AgesweepError, as_json: bool) -> None:
    problems = exc.problems if isinstance(exc, ManifestInvalid) else str(exc).splitlines()
    if as_json:
        print(json.dumps({"valid": False, "error": type(exc).__name__, "problems": problems}, indent=2))
    else:
        err = _err()
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        err.print(f"[bold red]✗[/] {path}: {type(exc).__name__}, {count}:")
        for line in problems:
            err.print(line, markup=False)
    raise typer.Exit(ExitCode.INVALID)


def validate(
    manifest: ManifestFile,
    preflight: Preflight = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print {valid, problems} as JSON.")] = False,
) -> None:
    """Check a manifest: schema, AWS limits and paths; every problem at once, one per line.

    Each problem reads `field.path: what is wrong (what is allowed)`.
    Exit codes: 0 valid, 2 invalid (nothing would be submitted).
    """
    try:
        plan = plan_file(manifest, preflight)
    except AgesweepError as exc:
        _fail(manifest, exc, as_json)
        return
    totals = plan["totals"]
    if as_json:
        print(json.dumps({"valid": True, "problems": [], "warnings": plan["warnings"], "jobs": totals["jobs"]}, indent=2))
        return
    out = _out()
    out.print(
        f"[bold green]✓[/] {manifest}: valid — run {plan['run_name']}, {totals['ages']} ages, "
        f"{totals['jobs']} jobs ({totals['child_jobs']} Batch jobs incl. array children)"
    )
    for warning in plan["warnings"]:
        _err().print(f"warning: {warning}", markup=False)


def _slices_text(item: dict[str, Any]) -> str:
    if item["array_size"]:
        return f"{item['start_index']}..{item['end_index']} by {item['slice_size']}"
    return ", ".join(f"{s}..{e}" for s, e in PlanItem.model_validate(item).slice_spans())


def _resource(item: dict[str, Any], kind: str, default: str) -> str:
    for req in item["container_overrides"].get("ResourceRequirements", []):
        if req["Type"] == kind:
            return req["Value"]
    return default


def plan(
    manifest: ManifestFile,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan dict the state machine receives.")] = False,
    preflight: Preflight = False,
) -> None:
    """Show what a manifest would run: one row per Batch job, then totals and a cost estimate.

    Exit codes: 0 planned, 2 invalid manifest.
    """
    try:
        result = plan_file(manifest, preflight)
    except AgesweepError as exc:
        _fail(manifest, exc, as_json)
        return
    if as_json:
        print(json.dumps(result, indent=2))
        return
    stack = Settings.from_env()
    out = _out()
    table = Table(title=f"Plan for {result['run_name']} (run id {result['run_id']})", title_justify="left")
    for column, justify in (("age", "right"), ("job name", "left"), ("array size", "right"), ("slices", "left"),
                            ("vCPU", "right"), ("memory MiB", "right"), ("output folder", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for item in result["items"]:
        table.add_row(
            str(item["age"]),
            item["job_name"],
            str(item["array_size"] or "-"),
            _slices_text(item),
            _resource(item, "VCPU", f"{stack.default_vcpus}*"),
            _resource(item, "MEMORY", f"{stack.default_memory_mib}*"),
            item["output_folder"],
        )
    out.print(table)
    totals, cost = result["totals"], result["totals"]["cost_estimate_usd"]
    if any(not item["container_overrides"].get("ResourceRequirements") for item in result["items"]):
        out.print("* the job definition's value (no override)", markup=False)
    out.print(
        f"Jobs: {totals['jobs']} ({totals['array_jobs']} array jobs, {totals['child_jobs']} Batch jobs in all) · "
        f"queue {result['job_queue']} · definition {result['job_definition']['ref']}"
        + (" (new revision with the manifest's image)" if result["register_job_definition"] else ""),
        markup=False,
    )
    out.print(
        f"Step Functions: ~{totals['state_transitions']:,} state transitions, ~{totals['history_events']:,} "
        f"history events of {totals['history_limit']:,}; plan payload {totals['payload_bytes'] / 1024:.1f} KiB",
        markup=False,
    )
    out.print(
        f"Estimated cost: Step Functions ${cost['step_functions']:.4f}; compute at most "
        f"${cost['compute_spot_at_timeout']:,.2f} spot / ${cost['compute_on_demand_at_timeout']:,.2f} on-demand "
        f"({cost['vcpu_hours_at_timeout']:,} vCPU-hours)",
        markup=False,
    )
    out.print(totals["estimate_note"], markup=False, style="dim")
    for warning in result["warnings"]:
        _err().print(f"warning: {warning}", markup=False)


def schema() -> None:
    """Print the manifest's JSON Schema (for editors: yaml-language-server, VS Code)."""
    print(json.dumps(manifest_json_schema(), indent=2))


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("plan")(plan)
    app.command("schema")(schema)
