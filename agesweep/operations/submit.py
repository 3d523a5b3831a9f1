"""`agesweep submit`: validate a manifest locally, upload it to manifests/, report the run it starts."""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from agesweep import aws
from agesweep.contracts import Plan, SkippedUpload
from agesweep.errors import ManifestInvalid
from agesweep.manifest import EFS_ROOT
from agesweep.manifest_source import read_manifest_file
from agesweep.operations.deployment import DeployedStack
from agesweep.operations.errors import OpsError, RunNotFound, aws_errors
from agesweep.operations.executions import describe_run
from agesweep.plan import validate_and_plan
from agesweep.runs import run_id_for, skipped_key
from agesweep.settings import Settings
from agesweep.start import content_sha256

if TYPE_CHECKING:  # boto3-backed checks are made only with --preflight
    from agesweep.preflight import Preflight

MANIFEST_PREFIX = "manifests/"
DEFAULT_START_WAIT_S = 60.0


def read_manifest(path: Path) -> bytes:
    """The file's bytes, at most the manifest size limit plus one (validation reports the excess)."""
    try:
        return read_manifest_file(path)
    except ManifestInvalid as exc:
        raise OpsError("; ".join(exc.problems)) from None


def plan_locally(raw: bytes, name: str, *, key: str | None = None, preflight: Preflight | None = None) -> Plan:
    """Validate and plan a manifest on this machine, as the ValidateManifest Lambda would (minus the S3 read).

    The run id is derived from the file's name and content. Raises ManifestInvalid (and, with
    `preflight`, InputMissing / PreflightFailed).
    """
    run_id = run_id_for("local", name, hashlib.sha256(raw).hexdigest())
    return validate_and_plan(raw, source_name=name, stack=Settings.from_env(), run_id=run_id,
                             manifest_location={"key": key or name}, preflight=preflight)


def efs_local_path(efs_path: str, mount: Path) -> Path:
    """Where an EFS path as jobs see it (/data/…) is on this machine (EFS mounted at `mount`)."""
    path = PurePosixPath(efs_path)
    root = PurePosixPath(EFS_ROOT)
    if not path.is_absolute() or (path != root and root not in path.parents) or ".." in path.parts:
        raise OpsError(f"--efs {efs_path}: give the manifest's path on EFS as jobs see it, under {EFS_ROOT}/")
    return mount.joinpath(*path.relative_to(root).parts)


@dataclass
class Submission:
    """One submitted manifest version and the run it started (or had already started)."""

    run_id: str
    execution_arn: str
    bucket: str
    key: str
    version_id: str | None
    sha256: str
    source: str
    uploaded: bool  # False: the same bytes were already the current version; its run is reported

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wait_for_execution(stack: DeployedStack, execution_arn: str, timeout_s: float, poll_s: float = 0.5) -> None:
    """Wait (bounded) for EventBridge → start_run to create the execution."""
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while True:
        with aws_errors():
            try:
                sfn.describe_execution(executionArn=execution_arn)
                return
            except ClientError as exc:
                if aws.error_code(exc) != "ExecutionDoesNotExist":
                    raise
        if time.monotonic() >= deadline:
            raise OpsError(
                f"the manifest was uploaded but no execution {execution_arn.rsplit(':', 1)[-1]} started within "
                f"{timeout_s:.0f} s: check the StartRun function's log and the stack's dead-letter queue "
                f"({stack.outputs.get('DeadLetterQueueUrl', 'DeadLetterQueueUrl output')})"
            )
        time.sleep(poll_s)


def _already_submitted(stack: DeployedStack, key: str, sha: str, source: str) -> Submission | None:
    """The run of the object at `key` when it already holds these bytes and that run exists."""
    with aws_errors():
        try:
            head = stack.client("s3").head_object(Bucket=stack.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if not aws.is_not_found(exc):
                raise
            return None
    metadata = head.get("Metadata") or {}
    version = head.get("VersionId")
    with aws_errors():  # `aws s3 cp` sets no sha256 metadata: S3's checksum, else the bytes
        if content_sha256(stack.client("s3"), stack.bucket, key, version, head) != sha:
            return None
    run_id = run_id_for(stack.bucket, key, version)
    with contextlib.suppress(RunNotFound):
        describe_run(stack, run_id)
        return Submission(run_id, stack.execution_arn(run_id), stack.bucket, key, version, sha,
                          metadata.get("source", source), uploaded=False)
    skipped = read_skipped(stack, run_id)  # that version started nothing: its bytes are an earlier run's
    if skipped is not None:
        return Submission(skipped.identical_to, stack.execution_arn(skipped.identical_to), stack.bucket, key, version, sha,
                          metadata.get("source", source), uploaded=False)
    return None


def read_skipped(stack: DeployedStack, run_id: str) -> SkippedUpload | None:
    """skipped/<run_id>.json: start_run's record of a version that started nothing (identical bytes)."""
    return stack.read_model(skipped_key(run_id), SkippedUpload)


def submit_manifest(
    stack: DeployedStack,
    raw: bytes,
    file_name: str,
    *,
    source: str,
    force: bool = False,
    wait_s: float = DEFAULT_START_WAIT_S,
) -> Submission:
    """Upload to manifests/<file_name> and return the run its version starts.

    A run is one manifest *version* (run_id = digest of bucket, key, VersionId). When the object
    at that key already holds the same bytes (its `sha256` metadata) and that version's run
    exists, nothing is uploaded and that run is returned; `force` uploads anyway, with the metadata
    `agesweep-rerun: true` (start_run starts nothing for the same bytes as the key's latest run
    unless asked: a new run).
    """
    key = MANIFEST_PREFIX + file_name
    sha = hashlib.sha256(raw).hexdigest()
    if not force:
        existing = _already_submitted(stack, key, sha, source)
        if existing is not None:
            return existing
    with aws_errors():
        version = stack.client("s3").put_object(
            Bucket=stack.bucket, Key=key, Body=raw, ContentType="application/yaml",
            Metadata={"sha256": sha, "source": source, **({"agesweep-rerun": "true"} if force else {})},
        ).get("VersionId")
    run_id = run_id_for(stack.bucket, key, version)
    execution_arn = stack.execution_arn(run_id)
    wait_for_execution(stack, execution_arn, wait_s)
    return Submission(run_id, execution_arn, stack.bucket, key, version, sha, source, uploaded=True)
