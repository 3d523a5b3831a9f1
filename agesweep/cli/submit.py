"""`agesweep submit`: validate a manifest locally, upload it, print the run it started."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agesweep.cli.options import AsJson, Force, Region, StackName, Wait
from agesweep.cli.output import fail_manifest, operator_errors, out, print_json
from agesweep.errors import AgesweepError
from agesweep.manifest import EFS_ROOT
from agesweep.operations.deployment import DEFAULT_STACK, DeployedStack, discover_stack
from agesweep.operations.errors import OpsError
from agesweep.operations.submit import DEFAULT_START_WAIT_S, Submission, efs_local_path, plan_locally, read_manifest, submit_manifest


def print_submission(sub: Submission, stack: DeployedStack) -> None:
    console = out()
    if sub.uploaded:
        console.print(f"[bold green]✓[/] started run [bold]{sub.run_id}[/]")
    else:
        console.print(
            f"[yellow]=[/] s3://{sub.bucket}/{sub.key} already holds these bytes: its run is [bold]{sub.run_id}[/] "
            "(nothing uploaded; --force starts a new run)"
        )
    console.print(f"  execution {sub.execution_arn}", markup=False)
    console.print(f"  manifest  s3://{sub.bucket}/{sub.key} version {sub.version_id} sha256 {sub.sha256[:12]}…", markup=False)
    console.print(f"  follow    agesweep watch {sub.run_id} --stack {stack.name}", markup=False)


def validate_or_exit(raw: bytes, name: str, shown_as: Path, as_json: bool) -> None:
    """Validate as `agesweep validate` does; an invalid manifest is printed and exits 2 (nothing uploaded)."""
    try:
        plan_locally(raw, name)
    except AgesweepError as exc:
        fail_manifest(shown_as, exc, as_json)


def _manifest_path(manifest: Path | None, efs: str | None, efs_mount: Path) -> tuple[Path, str]:
    """The file to read and its `source` metadata (file:<name> or efs:<path>)."""
    if (manifest is None) == (efs is None):
        raise OpsError("give a MANIFEST file or --efs PATH (one of them)")
    if efs is not None:
        return efs_local_path(efs, efs_mount), f"efs:{efs}"
    assert manifest is not None
    return manifest, f"file:{manifest.name}"


def submit(
    manifest: Annotated[
        Path | None, typer.Argument(help="Manifest file (YAML or JSON) on this machine.", dir_okay=False, show_default=False)
    ] = None,
    stack: StackName = DEFAULT_STACK,
    region: Region = None,
    efs: Annotated[
        str | None,
        typer.Option("--efs", help="Instead of MANIFEST: a manifest on EFS, by its path as jobs see it (/data/manifests/x.yaml)."),
    ] = None,
    efs_mount: Annotated[
        Path, typer.Option("--efs-mount", help="Where the EFS file system (/data) is mounted on this machine.")
    ] = Path(EFS_ROOT),
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
    with operator_errors():
        path, source = _manifest_path(manifest, efs, efs_mount)
        raw = read_manifest(path)
        validate_or_exit(raw, path.name, path, as_json)
        found = discover_stack(stack, region)
        sub = submit_manifest(found, raw, path.name, source=source, force=force, wait_s=wait)
    if as_json:
        print_json(sub.to_dict())
    else:
        print_submission(sub, found)
