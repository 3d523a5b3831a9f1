"""Files that must survive a spot interruption, and S3 at the edges of the job.

Every output is written to a temporary name in its final folder and renamed into place, so a
reader (or a resumed attempt) sees a whole file or none. boto3 is imported only when an ``s3://``
location is used; it honours ``AWS_ENDPOINT_URL`` (set by local mode).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from training.data import InputError

_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are read by collation and people
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_tensor_file(obj: Any, path: Path) -> None:
    _atomic(path, lambda tmp: torch.save(obj, tmp))


def save_text(text: str, path: Path) -> None:
    _atomic(path, lambda tmp: tmp.write_text(text))


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (no second copy on EFS), else a copy; atomic either way.
    Safe because outputs are only ever replaced (renamed over), never changed in place; the source
    is never written to (not even its mode)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-link.tmp")
    try:
        os.link(source, tmp)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        _atomic(target, lambda copy: shutil.copyfile(source, copy))


def remove_stale_tmp(folder: Path, names: list[str]) -> list[Path]:
    """Removes what a writer killed mid-write left of ``names`` (``.<name>.*.tmp``); returns them."""
    stale = [tmp for name in names for tmp in Path(folder).glob(f".{name}.*.tmp")]
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> (bucket, "some/prefix/")."""
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise InputError(f"not an s3:// location: {uri}")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise InputError(f"no bucket in {uri}")
    return bucket, prefix


def _client():
    import boto3  # lazily: plain local jobs never pay its import

    return boto3.client("s3")


def fetch_inputs(uri: str, names: list[str], cache_root: Path, optional: tuple[str, ...] = ()) -> Path:
    """Downloads ``names`` (and those of ``optional`` that exist) under an ``s3://`` prefix into a
    cache folder named after the prefix; files already there with the object's size are reused,
    so retries and other ages skip it."""
    from botocore.exceptions import ClientError

    bucket, prefix = split_s3(uri if uri.endswith("/") else uri + "/")
    folder = Path(cache_root) / hashlib.sha256(uri.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    client = _client()
    for name in [*names, *optional]:
        key = prefix + name
        try:
            size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        except ClientError as error:
            if name in optional:
                continue
            raise InputError(f"missing input object s3://{bucket}/{key} ({error.response['Error'].get('Code')})") from None
        target = folder / name
        if target.is_file() and target.stat().st_size == size:
            continue
        _atomic(target, lambda tmp, key=key: client.download_file(bucket, key, str(tmp)))
    return folder


def put_json(uri_prefix: str, key_under_prefix: Callable[[str], str], payload: dict) -> str:
    """Uploads ``payload`` as JSON to the key that ``key_under_prefix(prefix)`` names; returns the URI."""
    bucket, prefix = split_s3(uri_prefix)
    key = key_under_prefix(prefix)
    _client().put_object(
        Bucket=bucket, Key=key, Body=json.dumps(payload, indent=2).encode(), ContentType="application/json"
    )
    return f"s3://{bucket}/{key}"
