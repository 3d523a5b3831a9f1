"""collate_run: read what AWS knows about a run, collate it, write the four files, answer the state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from agesweep import aws
from agesweep.collation.facts import JobFacts
from agesweep.collation.join import MetricsKey, collate
from agesweep.collation.render import message, subject, summary_csv, summary_json
from agesweep.collation.retry import retry_file, validate_retry_manifest
from agesweep.collation.store import (
    read_child_facts,
    read_job_facts,
    read_manifest,
    read_metrics,
    read_point_metrics,
    write_files,
)
from agesweep.contracts import CollateOutput, ItemResult, JobMetrics, Plan, Summary
from agesweep.joblogs import log_tail
from agesweep.links import DEFAULT_LOG_GROUP, s3_console_url
from agesweep.points import PointKey, point_key
from agesweep.report import render_report
from agesweep.runs import run_prefix
from agesweep.settings import local_mode


def output_uris(bucket: str, run_id: str, region: str, *, local: bool = False) -> dict[str, str]:
    """Where the four files land; with the S3 console link to the report, except in local mode
    (no console: local mode copies the files into its run folder and prints where)."""
    prefix = run_prefix(run_id)
    uris = {
        "summary_uri": f"s3://{bucket}/{prefix}summary.json",
        "report_uri": f"s3://{bucket}/{prefix}report.html",
        "retry_manifest_uri": f"s3://{bucket}/{prefix}retry-manifest.yaml",
    }
    if not local:
        uris["report_console_url"] = s3_console_url(bucket, f"{prefix}report.html", region)
    return uris


def metrics_location(plan: Plan, bucket: str) -> tuple[str, str]:
    """Where the jobs upload metrics: the plan's results_uri, else the run's prefix in the stack bucket."""
    try:
        return aws.s3_prefix(plan.results_uri)
    except ValueError:
        return bucket, run_prefix(plan.run_id)


def read_run_metrics(s3: Any, plan: Plan, bucket: str) -> dict[MetricsKey, JobMetrics]:
    """The run's metrics: a v1 item's under the run's results prefix, a point's under its own."""
    found: dict[MetricsKey, JobMetrics] = {}
    if any(not item.point for item in plan.items):
        found.update(read_metrics(s3, *metrics_location(plan, bucket)).items())
    if any(item.point for item in plan.items):
        found.update(read_point_metrics(s3, plan))
    return found


def read_array_children(batch: Any, plan: Plan, results: Sequence[ItemResult | None]) -> dict[str, list[JobFacts]]:
    """The children of every array job the iterations ran (the plan's array size, else the result's)."""
    sizes = {item.job_name: item.array_size for item in plan.items}
    children: dict[str, list[JobFacts]] = {}
    for result in results:
        job_id = result.job_id if result else None
        if result is None or not job_id:
            continue
        size = sizes.get(result.job_name, result.array_size)
        if size >= 2:
            children[job_id] = read_child_facts(batch, job_id, size)
    return children


def attach_log_tails(summary: Summary, logs: Any, log_group: str) -> None:
    """Each failed slice (and its failure row) gets the last lines of its job's log."""
    tails: dict[tuple[PointKey, int, int], list[str]] = {}
    for outcome in summary.slices():
        if not outcome.succeeded and outcome.log_stream:
            outcome.log_tail = log_tail(logs, log_group, outcome.log_stream)
            tails[(point_key(outcome.point, outcome.age), outcome.start_index, outcome.end_index)] = outcome.log_tail
    for failure in summary.failures:
        failure.log_tail = tails.get((point_key(failure.point, failure.age), failure.start_index, failure.end_index), [])


def collate_run(
    plan: Plan,
    results: Sequence[ItemResult | None],
    *,
    bucket: str,
    log_group: str = DEFAULT_LOG_GROUP,
    region: str | None = None,
    batch: Any = None,
    s3: Any = None,
    logs: Any = None,
    now: datetime | None = None,
    validate_manifest: Callable[[str], None] | None = validate_retry_manifest,
    local: bool | None = None,
) -> CollateOutput:
    """Read what AWS knows about the run, collate it, write the four files, return the collate output.

    ``validate_manifest`` (text -> None, raises on a bad manifest) checks the retry manifest with
    the project's manifest model before it is written. ``local`` (default: agesweep.settings.local_mode(), the
    AGESWEEP_LOCAL env var local mode sets) labels every cost "if run on AWS".
    """
    region = region or aws.region_from_env()
    batch = batch or aws.client("batch")
    s3 = s3 or aws.client("s3")

    jobs = read_job_facts(batch, [r.job_id for r in results if r is not None and r.job_id])
    children = read_array_children(batch, plan, results)
    metrics = read_run_metrics(s3, plan, bucket)
    local = local_mode() if local is None else local
    summary = collate(plan, results, jobs, children, metrics, log_group=log_group, region=region, now=now, local=local)
    if summary.failures:
        attach_log_tails(summary, logs or aws.client("logs"), log_group)

    uris = output_uris(bucket, plan.run_id, region, local=local)
    retry_text = retry_file(summary, lambda: read_manifest(s3, plan.manifest, bucket), validate_manifest)
    write_files(s3, bucket, run_prefix(plan.run_id), {
        "summary.json": summary_json(summary),
        "summary.csv": summary_csv(summary),
        "report.html": render_report(summary, uris),
        "retry-manifest.yaml": retry_text,
    })
    return CollateOutput(
        run_id=summary.run_id,
        total=summary.total,
        succeeded=summary.succeeded,
        failed=summary.failed,
        within_tolerance=summary.within_tolerance,
        subject=subject(summary),
        message=message(summary, uris),
        summary_uri=uris["summary_uri"],
        report_uri=uris["report_uri"],
        retry_manifest_uri=uris["retry_manifest_uri"],
    )
