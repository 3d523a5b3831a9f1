"""Collation's AWS side: what Batch and S3 know about a run, and the writer of its four files.

The reads go through agesweep.aws (batched DescribeJobs, ListJobs by arrayJobId) and
agesweep.manifest_source (the exact manifest version); boto3 clients are passed in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from agesweep import aws
from agesweep.collation.facts import JobFacts
from agesweep.collation.join import MetricsKey, TrainerKey
from agesweep.contracts import JobMetrics, ManifestRef, Plan
from agesweep.manifest_source import read_manifest_version
from agesweep.points import point_key
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


def parse_metrics_key(key: str) -> TrainerKey | None:
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


def read_metrics(s3: Any, bucket: str, prefix: str) -> dict[TrainerKey, JobMetrics]:
    """Every metrics JSON under <prefix>metrics/ (the trainer's upload), keyed by (age, start, end).

    Objects whose key is not a metrics key, and bodies that are not a metrics JSON, are skipped.
    """
    found: dict[TrainerKey, JobMetrics] = {}
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


def _read_json(s3: Any, bucket: str, key: str) -> JobMetrics | None:
    try:
        return JobMetrics.model_validate_json(aws.read_object(s3, bucket, key, max_bytes=MAX_METRICS_BYTES))
    except (ValidationError, aws.ObjectTooLarge):
        return None


def point_prefixes(plan: Plan) -> dict[tuple[str, str], dict[str, str]]:
    """(bucket, key prefix) of each point's own results_uri -> the point (items without axis values,
    or whose results_uri is no s3:// URI, have none)."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for item in plan.items:
        try:
            where = aws.s3_prefix(item.parameters.get("results_uri", ""))
        except ValueError:
            continue
        if item.point:
            found.setdefault(where, item.point)
    return found


def _owner(key: str, prefixes: Mapping[str, dict[str, str]]) -> tuple[str, dict[str, str]] | None:
    """The point prefix a key lies under, as `<prefix>metrics/...`, and what follows the prefix."""
    at = key.find("metrics/")
    while at >= 0:
        if key[:at] in prefixes:
            return key[at:], prefixes[key[:at]]
        at = key.find("metrics/", at + 1)
    return None


def read_point_metrics(s3: Any, plan: Plan) -> dict[MetricsKey, JobMetrics]:
    """Each point's metrics under its own results_uri: the trainer's metrics keys there, keyed by
    (point, start, end); an own job's JSON files under <results_uri>metrics/ (any names, extra
    members kept), merged in key order (a later file's member wins) as that point's one JobMetrics.

    One listing per bucket, under the prefix all points share (the run's ``points/``).
    """
    by_bucket: dict[str, dict[str, dict[str, str]]] = {}
    for (bucket, prefix), point in point_prefixes(plan).items():
        by_bucket.setdefault(bucket, {})[prefix] = point
    trainer = plan.workload == "trainer"
    found: dict[MetricsKey, JobMetrics] = {}
    merged: dict[MetricsKey, dict[str, Any]] = {}
    for bucket, prefixes in by_bucket.items():
        common = os.path.commonprefix(list(prefixes))
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=common):
            for obj in sorted(page.get("Contents", []), key=lambda o: str(o["Key"])):
                owner = _owner(obj["Key"], prefixes)
                parsed = parse_metrics_key(owner[0]) if owner and trainer else None
                if owner is None or not obj["Key"].endswith(".json") or (trainer and parsed is None):
                    continue
                metrics = _read_json(s3, bucket, obj["Key"])
                if metrics is None:
                    continue
                if parsed is not None:
                    found[(point_key(owner[1], parsed[0]), parsed[1], parsed[2])] = metrics
                else:
                    merged.setdefault((point_key(owner[1], None), 0, 0), {}).update(metrics.model_dump(exclude_unset=True))
    found.update({key: JobMetrics.model_validate(doc) for key, doc in merged.items()})
    return found


def read_manifest(s3: Any, ref: ManifestRef, bucket: str) -> str:
    """The original manifest text, at the exact version the run was started from (in ``bucket``
    when the plan names none)."""
    return read_manifest_version(s3, ref.bucket or bucket, ref.key, ref.version_id).decode("utf-8")


def write_files(s3: Any, bucket: str, prefix: str, files: Mapping[str, str]) -> None:
    """Put each file under the run's prefix with its content type."""
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=body.encode("utf-8"), ContentType=CONTENT_TYPES[name])
