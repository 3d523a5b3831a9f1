"""Run identity: one Step Functions execution per manifest version, whatever is delivered twice."""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

from agesweep.contracts import ExecutionInput

EXECUTION_NAME_MAX = 80
SKIPPED_PREFIX = "skipped/"  # skipped/<run_id>.json: a version that started nothing (agesweep.start)
_STEM_MAX = 60
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def run_id_for(bucket: str, key: str, version_id: str | None) -> str:
    """Deterministic execution name (= run id) for one object version.

    The stem keeps it readable; the digest keeps it unique per (bucket, key, version).
    """
    digest = hashlib.sha256("\0".join([bucket, key, version_id or "null"]).encode()).hexdigest()[:12]
    stem = _UNSAFE.sub("-", PurePosixPath(key).name.rsplit(".", 1)[0]).strip("-_")[:_STEM_MAX] or "run"
    run_id = f"{stem}-{digest}"
    assert len(run_id) <= EXECUTION_NAME_MAX
    return run_id


def run_prefix(run_id: str) -> str:
    """runs/<run_id>/: where a run's small results live in the stack bucket (metrics, summary, report)."""
    return f"runs/{run_id}/"


def items_key(run_id: str) -> str:
    """runs/<run_id>/plan-items.json: a Distributed Map's items (the validate Lambda writes them)."""
    return f"{run_prefix(run_id)}plan-items.json"


def skipped_key(run_id: str) -> str:
    """skipped/<run_id>.json: start_run's record of a version that started nothing (read by the CLI)."""
    return f"{SKIPPED_PREFIX}{run_id}.json"


def is_folder_marker(key: str) -> bool:
    """True for the zero-byte ``manifests/`` object the S3 console creates as a "folder": no run."""
    return key.endswith("/")


def execution_input(bucket: str, key: str, version_id: str | None) -> ExecutionInput:
    """The sweep execution's input; its run_id is the execution name."""
    return ExecutionInput(bucket=bucket, key=key, version_id=version_id, run_id=run_id_for(bucket, key, version_id))
