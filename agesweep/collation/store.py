"""Collation's AWS side: what Batch and S3 know about a run, and the writer of its four files.

The reads go through agesweep.aws (batched DescribeJobs, ListJobs by arrayJobId) and
agesweep.manifest_source (the exact manifest version); boto3 clients are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from agesweep import aws
from agesweep.collation.facts import JobFacts
from agesweep.collation.join import MetricsKey
from agesweep.contracts import JobMetrics, ManifestRef
from agesweep.manifest_source import read_manifest_version
from agesweep.runs import run_prefix

OUTPUT_FILES = ("summary.json", "summary.csv", "report.html", "retry-manifest.yaml")
CONTENT_TYPES = {
    "summary.json": "application/json",
    "summary.csv": "text/csv; charset=utf-8",
    "report.html": "text/html; charset=utf-8",
    "retry-manifest.yaml": "application/yaml; charset=utf-8",
}
MAX_METRICS_BYTES = 16 * 1024 * 1024
_METRICS_KEY = re.compile(r"metrics/age_(\d+)/metrics_age_(\d+)_(\d+)_(\d+)\.json$")


def metrics_key(run_id: str, age: int, start: int, end: int) -> str:
    return f"{run_prefix(run_id)}metrics/age_{age}/metrics_age_{age}_{start}_{end}.json"


def parse_metrics_key(key: str) -> MetricsKey | None:
    """(age, start, end) from a metrics object key, None for anything else under the prefix."""
    match = _METRICS_KEY.search(key)
    if not match or match.group(1) != match.group(2):
        return None
    return int(match.group(2)), int(match.group(3)), int(match.group(4))


def read_job_facts(batch: Any, job_ids: Iterable[str]) -> dict[str, JobFacts]:
    """The facts of every job Batch still knows (DescribeJobs, 100 ids per call)."""
    return {job_id: JobFacts.of(desc) for job_id, desc in aws.describe_jobs(batch, job_ids).items()}


def read_child_facts(batch: Any, array_job_id: str, size: int) -> list[JobFacts]:
    """The facts of every child of an array job (ListJobs by arrayJobId, then DescribeJobs)."""
    return [JobFacts.of(child) for child in aws.array_children(batch, array_job_id, size)]


def read_metrics(s3: Any, bucket: str, prefix: str) -> dict[MetricsKey, JobMetrics]:
    """Every metrics JSON under <prefix>metrics/ (the trainer's upload), keyed by (age, start, end).

    Objects whose key is not a metrics key, and bodies that are not a metrics JSON, are skipped.
    """
    found: dict[MetricsKey, JobMetrics] = {}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}metrics/"):
        for obj in page.get("Contents", []):
            key = parse_metrics_key(obj["Key"])
            if key is None:
                continue
            try:
                body = aws.read_object(s3, bucket, obj["Key"], max_bytes=MAX_METRICS_BYTES)
                found[key] = JobMetrics.model_validate_json(body)
            except (ValidationError, aws.ObjectTooLarge):
                continue
    return found


def read_manifest(s3: Any, ref: ManifestRef, bucket: str) -> str:
    """The original manifest text, at the exact version the run was started from (in ``bucket``
    when the plan names none)."""
    return read_manifest_version(s3, ref.bucket or bucket, ref.key, ref.version_id).decode("utf-8")


def write_files(s3: Any, bucket: str, prefix: str, files: Mapping[str, str]) -> None:
    """Put each file under the run's prefix with its content type."""
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=body.encode("utf-8"), ContentType=CONTENT_TYPES[name])
