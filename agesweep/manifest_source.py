"""Where a manifest's bytes come from: one object version in S3, or a file. The one reader of each.

Both read at most the size limit plus one byte, so an oversized manifest is reported by size
without being read whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from agesweep import aws
from agesweep.efs_watch import source_from_metadata
from agesweep.errors import InputMissing, ManifestInvalid
from agesweep.manifest_loading import MAX_MANIFEST_BYTES


def read_manifest_version(s3: Any, bucket: str, key: str, version_id: str | None) -> bytes:
    """The exact object version a run was started for. InputMissing when it is gone."""
    try:
        return aws.read_object(s3, bucket, key, version_id, max_bytes=MAX_MANIFEST_BYTES)
    except aws.ObjectTooLarge as exc:
        raise ManifestInvalid([f"manifest: {exc}"]) from None
    except ClientError as exc:
        if not aws.is_not_found(exc):
            raise
        where = f"s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")
        raise InputMissing(f"manifest: {where} not found: {aws.error_code(exc)} (an existing manifest object)") from None


def read_manifest_file(path: Path) -> bytes:
    """A local manifest file (validation reports an oversized one). ManifestInvalid when unreadable."""
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_MANIFEST_BYTES:
                raise ManifestInvalid([f"manifest: {aws.ObjectTooLarge(size, MAX_MANIFEST_BYTES)}"])
            return fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestInvalid([f"manifest: cannot read {path}: {exc.strerror or exc} (a readable file)"]) from None


def manifest_origin(s3: Any, bucket: str, key: str, version_id: str | None) -> str | None:
    """Where an uploaded manifest came from, when its uploader said so in the object's ``source``
    metadata (the EFS watcher and `agesweep submit --efs`: ``efs:/data/manifests/x.yaml``); None for
    a plain upload or a missing object."""
    request: dict[str, Any] = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    try:
        metadata = s3.head_object(**request).get("Metadata") or {}
    except ClientError:
        return None
    return source_from_metadata(metadata)
