"""The run as text: summary.json, summary.csv, and the SNS subject and message."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from typing import Any

from agesweep.collation.join import KEPT_METRICS
from agesweep.contracts import Failure, JobMetrics, SliceOutcome, Summary
from agesweep.points import jobs_unit, point_label, where
from agesweep.text import (
    SUBJECT_MAX,
    ascii_line,
    asked_used_text,
    format_ages,
    format_cost,
    format_duration,
    format_memory,
    incurred_text,
)

MAX_FAILURES_IN_MESSAGE = 10
IF_ON_AWS = " (if run on AWS)"
METRIC_COLUMNS = (
    "final_loss", "heldout_c_index_initial", "heldout_c_index", "n_patients", "epochs", "wall_time_s", "cpu_seconds",
    "peak_rss_mb", "device",
)
CSV_COLUMNS = (
    "run_id", "age", "start_index", "end_index", "status", "status_reason", "exit_code", "attempts",
    "duration_s", "started_at", "stopped_at", "job_id", "array_index", "log_stream", "log_url",
    "capacity", "reclaims", "log_tail", *METRIC_COLUMNS, "suspect", "suspect_reasons",
)
TAIL_IN_MESSAGE = 3
MAX_POINTS_IN_MESSAGE = 10


def axis_columns(summary: Summary) -> list[str]:
    """The CSV's column of each axis: its name, or `axis_<name>` where a standard column has that name."""
    return [f"axis_{n}" if n in CSV_COLUMNS else n for n in summary.axes]


def points_text(points: list[dict[str, str]], limit: int = MAX_POINTS_IN_MESSAGE) -> str:
    """Points in words, `; ` between them, the first `limit` of them."""
    shown = "; ".join(point_label({k: v for k, v in p.items() if k != "age"}, int(p["age"]) if "age" in p else None)
                      for p in points[:limit])
    return shown + (f"; ... and {len(points) - limit} more" if len(points) > limit else "")


def finite_json(value: Any) -> Any:
    """NaN and infinities as null: summary.json stays strict JSON (suspect_reasons say what they were)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    return value


def _written(metrics: JobMetrics) -> dict[str, Any]:
    """The metrics a job wrote (no member it left out), in the order of KEPT_METRICS."""
    dumped = metrics.model_dump(mode="json", exclude_unset=True)
    return {k: dumped.pop(k) for k in KEPT_METRICS if k in dumped} | dumped


def _slice_dict(outcome: SliceOutcome) -> dict[str, Any]:
    row = outcome.model_dump(mode="json")
    row["metrics"] = None if outcome.metrics is None else _written(outcome.metrics)
    lineage = outcome.metrics_lineage
    row["metrics_lineage"] = None if lineage is None else lineage.model_dump(mode="json", exclude_unset=True)
    return row


def summary_dict(summary: Summary) -> dict[str, Any]:
    """summary.json's content: a slice's metrics and lineage hold only what the job wrote."""
    data = summary.model_dump(mode="json")
    for age, dumped in zip(summary.ages, data["ages"], strict=True):
        dumped["slices"] = [_slice_dict(outcome) for outcome in age.slices]
    cleaned: dict[str, Any] = finite_json(data)
    return cleaned


def summary_json(summary: Summary) -> str:
    return json.dumps(summary_dict(summary), indent=2, sort_keys=False, allow_nan=False) + "\n"


def summary_csv(summary: Summary) -> str:
    """One row per job (point, age, slice); a column per axis and per metric, so the file opens in
    a spreadsheet as it is."""
    buffer = io.StringIO()
    axes = dict(zip(summary.axes, axis_columns(summary), strict=True))
    writer = csv.DictWriter(buffer, fieldnames=[CSV_COLUMNS[0], *axes.values(), *CSV_COLUMNS[1:]], lineterminator="\n")
    writer.writeheader()
    for s in summary.slices():
        row = {k: v for k, v in s.model_dump().items() if k in CSV_COLUMNS}
        row["run_id"] = summary.run_id
        row.update({column: s.point.get(name) for name, column in axes.items()})
        row["log_tail"] = " | ".join(s.log_tail)
        for key in METRIC_COLUMNS:
            row[key] = getattr(s.metrics, key) if s.metrics else None
        row["suspect"] = "yes" if s.suspect else ""
        row["suspect_reasons"] = "; ".join(s.suspect_reasons)
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def subject(summary: Summary) -> str:
    """SNS subject: ASCII, one line, at most 100 characters, starts with a letter."""
    if summary.failed == 0:
        verdict = "OK"
    elif summary.within_tolerance:
        verdict = "partly failed (within tolerance)"
    else:
        verdict = "FAILED"
    tail = f": {summary.succeeded}/{summary.total} ok, {summary.failed} failed - {verdict}"
    head = "agesweep "
    room = SUBJECT_MAX - len(head) - len(tail)
    run = summary.run_id if len(summary.run_id) <= room else summary.run_id[: max(room - 3, 1)] + "..."
    return ascii_line(head + run + tail)[:SUBJECT_MAX]


def _counts_line(summary: Summary) -> str:
    if summary.failed == 0:
        verdict = "all succeeded"
    else:
        verdict = "within tolerance" if summary.within_tolerance else "ABOVE tolerance"
    return (
        f"{summary.succeeded} succeeded / {summary.failed} failed of {summary.total} jobs ({jobs_unit(summary)}) - {verdict} "
        f"({summary.failed_percent:.3g}% failed, {summary.tolerated_failure_percent:g}% tolerated)"
    )


def _run_lines(summary: Summary) -> list[str]:
    lines = [_counts_line(summary), *_axes_lines(summary)]
    ages = sorted({a.age for a in summary.ages if a.age is not None})
    if ages:
        lines.append(f"Ages: {format_ages(ages)}")
    if summary.failed_ages:
        lines.append(f"Failed ages: {format_ages(summary.failed_ages)}")
    if summary.axes and summary.failed_points:
        lines.append(f"Failed points ({len(summary.failed_points)}): {points_text(summary.failed_points)}")
    lines.append(f"Duration: {format_duration(summary.duration_s)}"
                 + (f" ({summary.started_at} to {summary.finished_at})" if summary.started_at else ""))
    lines.extend(_cost_lines(summary))
    lines.extend(_resource_lines(summary))
    if summary.suspect_ages and not summary.axes:
        many = "s" if len(summary.suspect_ages) > 1 else ""
        lines.append(f"Suspect training: age{many} {format_ages(summary.suspect_ages)} ({_first_reason(summary)})")
    elif any(s.suspect for s in summary.slices()):
        suspects = len({(tuple(s.point.items()), s.age) for s in summary.slices() if s.suspect})
        lines.append(f"Suspect training: {suspects} point{'s' if suspects > 1 else ''} ({_first_reason(summary)})")
    if summary.lineage.retry_of:
        lines.append(f"Retry of run {summary.lineage.retry_of} (its finished work reused, its checkpoints resumed)")
    manifest = summary.lineage.manifest
    if manifest.key:
        lines.append(f"Manifest: s3://{manifest.bucket}/{manifest.key}"
                     + (f" (sha256 {manifest.sha256[:12]})" if manifest.sha256 else ""))
    return lines


def _axes_lines(summary: Summary) -> list[str]:
    """A run with named axes: each axis with its number of values."""
    if not summary.axes:
        return []
    counts = [f"{n} ({len({a.point.get(n) for a in summary.ages})} values)" for n in summary.axes]
    return [f"Axes: {', '.join(counts)}; {len({tuple(a.point.items()) for a in summary.ages})} points"]


def _cost_lines(summary: Summary) -> list[str]:
    """The estimate as before, and what the run incurred; local mode's are 'if run on AWS'."""
    cost = summary.cost_estimate
    label = IF_ON_AWS if cost.if_run_on_aws else ""
    lines = [f"Cost estimate{label}: {format_cost(cost.cost_estimate_usd)}"]
    if cost.incurred is not None:
        lines.append(f"Cost incurred{label}: {incurred_text(cost.incurred)}")
    return lines


def _resource_lines(summary: Summary) -> list[str]:
    """One line: asked vs used, and the next run's job: block."""
    resources = summary.resources
    if resources is None or not resources.overall.jobs:
        return []
    line = f"Resources: {asked_used_text(resources.overall)}"
    advice = resources.recommendation
    if advice is not None:
        line += f"; next run: job: {{vcpus: {advice.vcpus}, memory_mib: {advice.memory_mib}}} ({format_memory(advice.memory_mib)})"
    return [line]


def _first_reason(summary: Summary) -> str:
    first = next(s for s in summary.slices() if s.suspect)
    label = point_label(first.point, first.age)
    return f"{label}: {first.suspect_reasons[0]}" if first.suspect_reasons else label


def _failure_line(f: Failure) -> str:
    detail = []
    if f.exit_code is not None:
        detail.append(f"exit {f.exit_code}")
    if f.attempts:
        detail.append(f"{f.attempts} attempt{'s' if f.attempts != 1 else ''}")
    if f.capacity:
        detail.append(f"on {f.capacity}")
    if f.reclaims:
        detail.append(f"{f.reclaims} reclaim{'s' if f.reclaims != 1 else ''}")
    extra = f" ({', '.join(detail)})" if detail else ""
    return f"- {where(f.point, f.age, f.start_index, f.end_index)}: {f.reason}{extra}"


def _failure_lines(summary: Summary) -> list[str]:
    if not summary.failures:
        return []
    lines = ["", f"Failures ({len(summary.failures)}):"]
    for f in summary.failures[:MAX_FAILURES_IN_MESSAGE]:
        lines.append(_failure_line(f))
        lines += [f"  | {line}" for line in f.log_tail[-TAIL_IN_MESSAGE:]]
        if f.log_url:
            lines.append(f"  log: {f.log_url}")
    if len(summary.failures) > MAX_FAILURES_IN_MESSAGE:
        lines.append(f"... and {len(summary.failures) - MAX_FAILURES_IN_MESSAGE} more in the report.")
    return lines


def _capacity_lines(summary: Summary) -> list[str]:
    """Which capacity finished each item, when any item was reclaimed or escalated."""
    touched = [a for a in summary.ages if a.reclaims or a.capacity == "on-demand"]
    if not touched:
        return []
    lines = ["", "Spot reclaims and escalations:"]
    for a in touched[:MAX_FAILURES_IN_MESSAGE]:
        how = "escalated to on-demand" if a.capacity == "on-demand" else "stayed on spot"
        reclaims = f"{a.reclaims} reclaim{'s' if a.reclaims != 1 else ''}"
        lines.append(f"- {point_label(a.point, a.age) or a.job_name}: {reclaims}, {how}, {a.status}")
    if len(touched) > MAX_FAILURES_IN_MESSAGE:
        lines.append(f"... and {len(touched) - MAX_FAILURES_IN_MESSAGE} more in the report.")
    return lines


def _file_lines(summary: Summary, uris: Mapping[str, str]) -> list[str]:
    lines = ["", f"Report: {uris.get('report_uri', '')}"]
    if uris.get("report_console_url"):
        lines.append(f"  open: {uris['report_console_url']}")
    lines.append(f"Summary: {uris.get('summary_uri', '')}")
    if not summary.failures:
        return [*lines, "Retry manifest: empty (nothing failed)"]
    retry_uri = uris.get("retry_manifest_uri", "")
    lines.append(f"Retry manifest (failed {'points' if summary.axes else 'pairs'} only): {retry_uri}")
    bucket = summary.lineage.manifest.bucket
    if bucket:
        lines.append(f"  rerun: aws s3 cp {retry_uri} s3://{bucket}/manifests/{summary.run_name}-retry.yaml")
    return lines


def message(summary: Summary, uris: Mapping[str, str]) -> str:
    """The SNS summary body: plain text that reads on a phone."""
    lines = [
        f"Run {summary.run_id}", "", *_run_lines(summary), *_failure_lines(summary), *_capacity_lines(summary),
        *_file_lines(summary, uris),
    ]
    lines += [f"Note: {note}" for note in summary.notes[:5]]
    return "\n".join(lines) + "\n"
