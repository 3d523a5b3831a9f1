"""What start_run decides for one new manifest version: start a run, or start nothing because the
bytes are those of the key's latest run (ARCHITECTURE.md: "identical bytes re-uploaded start
nothing unless asked"), or because the event is a redelivery of a version that has its run.

Pure decisions plus small S3 / Step Functions readers, so the handler stays thin and moto tests
exercise the real calls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from agesweep import aws
from agesweep.manifest_loading import MAX_MANIFEST_BYTES
from agesweep.runs import run_id_for, skipped_key

SHA256_METADATA = ("agesweep-sha256", "sha256")  # `agesweep submit` sets sha256 (x-amz-meta-sha256)
RERUN_METADATA = ("agesweep-rerun", "rerun")  # x-amz-meta-agesweep-rerun: true asks for a rerun
VERSIONS_LOOKED_AT = 50  # older versions of one key than this are not searched for the latest run
REDELIVERY_SLACK_S = 2.0  # an execution that started this long before our StartExecution is not ours


def checksum_hex(checksum_sha256: str | None) -> str | None:
    """S3's ChecksumSHA256 (base64 of the digest) as hex; None for none or a multipart composite."""
    if not checksum_sha256 or "-" in checksum_sha256:
        return None
    try:
        digest = base64.b64decode(checksum_sha256, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest.hex() if len(digest) == 32 else None


def _metadata(head: dict[str, Any], names: tuple[str, ...]) -> str | None:
    metadata = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    return next((metadata[name] for name in names if metadata.get(name)), None)


def rerun_requested(head: dict[str, Any]) -> bool:
    """The upload asks for a run even when its bytes are the latest run's."""
    return (_metadata(head, RERUN_METADATA) or "").strip().lower() in ("true", "1", "yes")


def content_sha256(s3: Any, bucket: str, key: str, version_id: str | None, head: dict[str, Any] | None = None) -> str:
    """sha256 of one object version: S3's full-object checksum, else the metadata `agesweep submit`
    sets, else the bytes (manifests are at most 1 MiB; a larger object hashes its first MiB + 1)."""
    if head is None:
        head = s3.head_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}),
                              ChecksumMode="ENABLED")
    known = checksum_hex(head.get("ChecksumSHA256")) or _metadata(head, SHA256_METADATA)
    if known:
        return known.lower()
    request: dict[str, Any] = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    return hashlib.sha256(s3.get_object(**request)["Body"].read(MAX_MANIFEST_BYTES + 1)).hexdigest()


def older_versions(s3: Any, bucket: str, key: str, version_id: str | None) -> list[dict[str, Any]]:
    """Versions of exactly `key` older than `version_id`, newest first (delete markers left out)."""
    versions: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        versions.extend(v for v in page.get("Versions", []) if v["Key"] == key)
        if len(versions) > VERSIONS_LOOKED_AT:
            break
    versions.sort(key=lambda v: v["LastModified"], reverse=True)
    ids = [v["VersionId"] for v in versions]
    if version_id not in ids:
        return []
    return versions[ids.index(version_id) + 1 : VERSIONS_LOOKED_AT + 1]


def execution_arn(state_machine_arn: str, run_id: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"


def describe(sfn: Any, state_machine_arn: str, run_id: str) -> dict[str, Any] | None:
    """The execution of a run, None when that run never started."""
    try:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn(state_machine_arn, run_id))
    except ClientError as exc:
        if aws.error_code(exc) == "ExecutionDoesNotExist":
            return None
        raise
    return described


def was_skipped(s3: Any, bucket: str, run_id: str) -> bool:
    """start_run already decided this version starts nothing (its skipped/<run_id>.json exists)."""
    try:
        s3.head_object(Bucket=bucket, Key=skipped_key(run_id))
    except ClientError as exc:
        if aws.is_not_found(exc):
            return False
        raise
    return True


@dataclass(frozen=True)
class LatestRun:
    """The newest earlier version of the key that has a run, and that run."""

    run_id: str
    version_id: str | None
    sha256: str
    status: str


def latest_run(s3: Any, sfn: Any, state_machine_arn: str, bucket: str, key: str, version_id: str | None) -> LatestRun | None:
    """Walks the key's older versions newest first to the first one that started a run (an upload
    that started nothing is skipped over): the run a new version's bytes are compared with."""
    for version in older_versions(s3, bucket, key, version_id):
        run_id = run_id_for(bucket, key, version["VersionId"])
        execution = describe(sfn, state_machine_arn, run_id)
        if execution is None:
            continue
        sha = content_sha256(s3, bucket, key, version["VersionId"])
        return LatestRun(run_id, version["VersionId"], sha, execution["status"])
    return None


@dataclass(frozen=True)
class Decision:
    start: bool
    reason: str | None = None
    sha256: str | None = None
    identical_to: str | None = None  # the run whose bytes these are


def decide(sha256: str, latest: LatestRun | None, rerun: bool) -> Decision:
    """Identical bytes to the key's latest run start nothing, unless a rerun is asked for (a full
    run: to reuse what a run finished, name it in the manifest's ``resume_from``)."""
    if latest is None or latest.sha256 != sha256:
        return Decision(start=True, sha256=sha256)
    if rerun:
        return Decision(start=True, reason="rerun requested", sha256=sha256, identical_to=latest.run_id)
    return Decision(start=False, reason="identical", sha256=sha256, identical_to=latest.run_id)


def is_redelivery(execution_start: datetime, called_at: datetime) -> bool:
    """StartExecution returns the running execution for an identical name and input: one that
    started well before this call was started by an earlier delivery of the same event."""
    return (called_at - execution_start).total_seconds() > REDELIVERY_SLACK_S
