"""Collation of one run: what happened to every (age, slice), as one answer and one file to rerun.

The AWS reads (DescribeJobs, ListJobs by arrayJobId, the metrics JSON under
``runs/<run_id>/metrics/``, the original manifest) are the ``read_*`` functions; everything that
turns those facts into a summary, a CSV, an SNS message or a retry manifest is pure and takes
plain dicts, so it is tested without AWS. ``collate_run`` wires the two together for the Lambda.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import yaml
from pydantic import BaseModel, Field

from agesweep.aws import region_from_env
from agesweep.links import DEFAULT_LOG_GROUP, log_url, s3_console_url
from agesweep.text import SUBJECT_MAX, ascii_line, format_ages, format_cost, format_duration

SUMMARY_SCHEMA_VERSION = 1
DESCRIBE_JOBS_BATCH = 100  # DescribeJobs takes at most 100 job ids
MAX_FAILURES_IN_MESSAGE = 10
RUN_NAME_MAX = 64  # the manifest model's run_name limit
OUTPUT_FILES = ("summary.json", "summary.csv", "report.html", "retry-manifest.yaml")
# Every status ListJobs knows, terminal ones first: after a finished array job one call suffices.
_LIST_STATUSES = ("SUCCEEDED", "FAILED", "RUNNING", "STARTING", "RUNNABLE", "PENDING", "SUBMITTED")
_METRICS_KEY = re.compile(r"metrics/age_(\d+)/metrics_age_(\d+)_(\d+)_(\d+)\.json$")
_METRIC_FIELDS = (
    "final_loss", "heldout_c_index", "n_patients", "epochs", "wall_time_s", "peak_rss_mb", "device",
    "resumed_from_epoch",
)


# --------------------------------------------------------------------------------------------
# The summary model (summary.json is its JSON dump)
# --------------------------------------------------------------------------------------------


class SliceOutcome(BaseModel):
    """One (age, slice): one Batch job, or one child of the age's array job."""

    age: int
    start_index: int
    end_index: int
    status: str = Field(description="Batch status (SUCCEEDED, FAILED, ...) or MISSING / NOT_SUBMITTED.")
    status_reason: str | None = None
    exit_code: int | None = None
    attempts: int = 0
    duration_s: float | None = None
    started_at: str | None = None
    stopped_at: str | None = None
    job_id: str | None = None
    array_index: int | None = None
    log_stream: str | None = None
    log_url: str | None = None
    metrics: dict[str, Any] | None = None
    metrics_lineage: dict[str, Any] | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def slice_label(self) -> str:
        return f"{self.start_index}-{self.end_index}"


class AgeOutcome(BaseModel):
    """One plan item (one age; its slices as one array job or a single job)."""

    age: int
    job_name: str
    job_id: str | None = None
    array_size: int = 0
    status: str
    status_reason: str | None = None
    error: dict[str, Any] | None = Field(None, description="The Map iteration's caught error, if any.")
    parameters: dict[str, str] = Field(default_factory=dict)
    slices: list[SliceOutcome]


class Failure(BaseModel):
    age: int
    start_index: int
    end_index: int
    status: str
    reason: str
    exit_code: int | None = None
    attempts: int = 0
    log_url: str | None = None


class Summary(BaseModel):
    """Everything a person (or the report, or a script) needs to know about one run."""

    schema_version: int = SUMMARY_SCHEMA_VERSION
    run_id: str
    run_name: str
    lineage: dict[str, Any]
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    total: int
    succeeded: int
    failed: int
    failed_percent: float
    tolerated_failure_percent: float
    within_tolerance: bool
    failed_ages: list[int]
    cost_estimate: dict[str, Any] = Field(default_factory=dict)
    ages: list[AgeOutcome]
    failures: list[Failure]
    collated_at: str
    notes: list[str] = Field(default_factory=list)

    def slices(self) -> list[SliceOutcome]:
        return [s for a in self.ages for s in a.slices]


# --------------------------------------------------------------------------------------------
# Small pure helpers
# --------------------------------------------------------------------------------------------






def _lower_first(key: str) -> str:
    return key[:1].lower() + key[1:]


_USER_MAPS = {"parameters", "tags"}


def camelize(value: Any) -> Any:
    """Step Functions hands Batch job descriptions over in PascalCase; the Batch API uses camelCase.

    Normalise to camelCase so one reader serves both (user maps such as parameters/tags keep their keys).
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            new_key = _lower_first(key) if isinstance(key, str) else key
            out[new_key] = item if new_key in _USER_MAPS else camelize(item)
        return out
    if isinstance(value, list):
        return [camelize(item) for item in value]
    return value


def parse_cause(error: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The caught error's Cause as a job description (camelCase) when it is one, else None."""
    if not error:
        return None
    cause = error.get("Cause")
    if isinstance(cause, str):
        try:
            cause = json.loads(cause)
        except ValueError:
            return None
    if isinstance(cause, dict) and ("JobId" in cause or "jobId" in cause):
        return camelize(cause)
    return None


def error_text(error: Mapping[str, Any] | None, limit: int = 300) -> str | None:
    """A one-line reason for a caught error that is not a job description (e.g. an API failure)."""
    if not error:
        return None
    name = str(error.get("Error") or "Error")
    cause = error.get("Cause")
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            cause = parsed.get("errorMessage") or parsed.get("StatusReason") or parsed.get("message") or cause
    text = f"{name}: {cause}" if cause else name
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _iso(ms: int | float | None) -> str | None:
    if not ms or ms <= 0:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def job_facts(desc: Mapping[str, Any]) -> dict[str, Any]:
    """Status, reason, exit code, attempts, timing and log stream of one job description (camelCase)."""
    attempts = list(desc.get("attempts") or [])
    last = attempts[-1] if attempts else {}
    container = desc.get("container") or {}
    last_container = last.get("container") or {}
    exit_code = container.get("exitCode")
    if exit_code is None:
        exit_code = last_container.get("exitCode")
    log_stream = container.get("logStreamName") or last_container.get("logStreamName")
    reason = desc.get("statusReason") or last.get("statusReason")
    started, stopped = desc.get("startedAt"), desc.get("stoppedAt")
    if not started and attempts:
        started = attempts[0].get("startedAt")
    duration = None
    if started and stopped and started > 0 and stopped >= started:
        duration = round((stopped - started) / 1000, 3)
    index = (desc.get("arrayProperties") or {}).get("index")
    if index is None and ":" in str(desc.get("jobId", "")):
        tail = str(desc["jobId"]).rsplit(":", 1)[1]
        index = int(tail) if tail.isdigit() else None
    return {
        "job_id": desc.get("jobId"),
        "status": desc.get("status"),
        "status_reason": reason,
        "exit_code": exit_code,
        "attempts": len(attempts),
        "started_at": _iso(started),
        "stopped_at": _iso(stopped),
        "created_ms": desc.get("createdAt"),
        "stopped_ms": stopped,
        "duration_s": duration,
        "log_stream": log_stream,
        "array_index": index,
        "image": container.get("image"),
        "job_definition": desc.get("jobDefinition"),
    }


def item_slices(item: Mapping[str, Any]) -> list[tuple[int, int]]:
    """The (start, end) pairs one plan item trains, in array-index order."""
    params = {**{k: item[k] for k in ("start_index", "end_index", "slice_size") if item.get(k) is not None},
              **(item.get("parameters") or {})}
    array_size = int(item.get("array_size") or 0)
    slice_size = int(params.get("slice_size") or 0)
    if array_size >= 2 and slice_size > 0 and "start_index" in params and "end_index" in params:
        start0, end = int(params["start_index"]), int(params["end_index"])
        return [(start0 + i * slice_size, min(start0 + (i + 1) * slice_size, end)) for i in range(array_size)]
    slices = [(int(s), int(e)) for s, e in item.get("slices") or []]
    if slices:
        return slices
    return [(int(params.get("start_index", 0)), int(params.get("end_index", 0)))]


def metrics_key(run_id: str, age: int, start: int, end: int) -> str:
    return f"runs/{run_id}/metrics/age_{age}/metrics_age_{age}_{start}_{end}.json"


def parse_metrics_key(key: str) -> tuple[int, int, int] | None:
    """(age, start, end) from a metrics object key, None for anything else under the prefix."""
    match = _METRICS_KEY.search(key)
    if not match or match.group(1) != match.group(2):
        return None
    return int(match.group(2)), int(match.group(3)), int(match.group(4))





# --------------------------------------------------------------------------------------------
# The core: plan + Map results + what AWS said -> Summary
# --------------------------------------------------------------------------------------------


def _match_results(plan: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> list[tuple[dict, dict | None]]:
    by_name = {r.get("job_name"): r for r in results if r}
    by_age: dict[Any, list[dict]] = {}
    for r in results:
        if r:
            by_age.setdefault(r.get("age"), []).append(r)
    pairs = []
    for item in plan.get("items") or []:
        result = by_name.get(item.get("job_name"))
        if result is None and len(by_age.get(item.get("age"), [])) == 1:
            result = by_age[item.get("age")][0]
        pairs.append((item, result))
    return pairs


def _slice_from_facts(
    age: int, span: tuple[int, int], facts: Mapping[str, Any] | None, fallback_status: str,
    fallback_reason: str | None, metrics: Mapping[tuple[int, int, int], Mapping[str, Any]],
    log_group: str, region: str,
) -> SliceOutcome:
    facts = facts or {}
    status = facts.get("status") or fallback_status
    if fallback_status != "SUCCEEDED" and status == "SUCCEEDED":
        # The state machine saw this job fail (e.g. a .sync timeout) although Batch says otherwise;
        # the iteration's verdict is what the run acted on.
        status = fallback_status
    found = metrics.get((age, span[0], span[1]))
    kept = None
    if found:
        kept = {k: found[k] for k in (*_METRIC_FIELDS, "loss_history") if k in found}
    return SliceOutcome(
        age=age,
        start_index=span[0],
        end_index=span[1],
        status=status,
        status_reason=facts.get("status_reason") or (fallback_reason if status != "SUCCEEDED" else None),
        exit_code=facts.get("exit_code"),
        attempts=facts.get("attempts") or 0,
        duration_s=facts.get("duration_s"),
        started_at=facts.get("started_at"),
        stopped_at=facts.get("stopped_at"),
        job_id=facts.get("job_id"),
        array_index=facts.get("array_index"),
        log_stream=facts.get("log_stream"),
        log_url=log_url(log_group, facts.get("log_stream"), region),
        metrics=kept,
        metrics_lineage=dict(found.get("lineage") or {}) if found else None,
    )


def collate(
    plan: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    jobs: Mapping[str, Mapping[str, Any]],
    children: Mapping[str, Sequence[Mapping[str, Any]]],
    metrics: Mapping[tuple[int, int, int], Mapping[str, Any]],
    *,
    log_group: str = DEFAULT_LOG_GROUP,
    region: str = "us-east-1",
    now: datetime | None = None,
) -> Summary:
    """Join the plan, the Map's iteration results, the job descriptions and the metrics into a Summary.

    ``jobs`` maps job id -> DescribeJobs entry; ``children`` maps an array job id -> its children's
    descriptions; ``metrics`` maps (age, start, end) -> the trainer's metrics JSON.
    """
    now = now or datetime.now(UTC)
    region_ = region
    ages: list[AgeOutcome] = []
    notes: list[str] = []
    all_facts: list[dict[str, Any]] = []

    for item, result in _match_results(plan, results):
        age = int(item["age"])
        spans = item_slices(item)
        error = (result or {}).get("error")
        cause_desc = parse_cause(error)
        job_id = ((result or {}).get("job") or {}).get("JobId") or (cause_desc or {}).get("jobId")
        desc = jobs.get(job_id) if job_id else None
        if desc is None and cause_desc is not None:
            desc = cause_desc
        if result is None:
            iteration_status, reason = "MISSING", "no result from the state machine for this age"
        else:
            iteration_status = str(result.get("status") or "FAILED")
            reason = None
        facts = job_facts(desc) if desc else None
        if facts:
            all_facts.append(facts)
        if iteration_status != "SUCCEEDED" and reason is None:
            reason = (facts or {}).get("status_reason") or error_text(error) or "failed (no reason recorded)"
        if desc is None and iteration_status == "FAILED":
            iteration_status = "NOT_SUBMITTED" if error and not job_id else iteration_status

        slice_outcomes: list[SliceOutcome] = []
        array_size = int(item.get("array_size") or 0)
        if array_size >= 2:
            kids = {}
            for child in children.get(job_id or "", []):
                child_facts = job_facts(child)
                if child_facts["array_index"] is not None:
                    kids[child_facts["array_index"]] = child_facts
                    all_facts.append(child_facts)
            if job_id and not kids and desc is not None:
                notes.append(f"age {age}: no child jobs listed for array job {job_id}")
            for index, span in enumerate(spans):
                child_facts = kids.get(index)
                fallback = iteration_status if child_facts is None else child_facts["status"]
                slice_outcomes.append(
                    _slice_from_facts(age, span, child_facts, fallback, reason, metrics, log_group, region_)
                )
        else:
            for span in spans:
                slice_outcomes.append(
                    _slice_from_facts(age, span, facts, iteration_status, reason, metrics, log_group, region_)
                )
        age_status = (
            "SUCCEEDED" if iteration_status == "SUCCEEDED" and all(s.succeeded for s in slice_outcomes)
            else (iteration_status if iteration_status != "SUCCEEDED" else "FAILED")
        )
        ages.append(
            AgeOutcome(
                age=age,
                job_name=str(item.get("job_name", "")),
                job_id=job_id,
                array_size=array_size,
                status=age_status,
                status_reason=reason,
                error=dict(error) if error else None,
                parameters={str(k): str(v) for k, v in (item.get("parameters") or {}).items()},
                slices=slice_outcomes,
            )
        )

    slices = [s for a in ages for s in a.slices]
    for s in slices:
        if s.succeeded and s.metrics is None:
            notes.append(f"age {s.age} slice {s.slice_label}: succeeded but no metrics JSON was found")
    total = len(slices)
    succeeded = sum(1 for s in slices if s.succeeded)
    failed = total - succeeded
    failed_percent = round(100.0 * failed / total, 4) if total else 0.0
    tolerated = float(plan.get("tolerated_failure_percent") or 0.0)
    failures = [
        Failure(
            age=s.age, start_index=s.start_index, end_index=s.end_index, status=s.status,
            reason=s.status_reason or "failed (no reason recorded)", exit_code=s.exit_code,
            attempts=s.attempts, log_url=s.log_url,
        )
        for s in slices
        if not s.succeeded
    ]
    created = [f["created_ms"] for f in all_facts if f.get("created_ms")]
    stopped = [f["stopped_ms"] for f in all_facts if f.get("stopped_ms")]
    started_ms = min(created) if created else None
    finished_ms = max(stopped) if stopped else None
    duration = round((finished_ms - started_ms) / 1000, 3) if started_ms and finished_ms and finished_ms >= started_ms else None

    return Summary(
        run_id=str(plan["run_id"]),
        run_name=str(plan.get("run_name") or plan["run_id"]),
        lineage=lineage(plan, all_facts, slices),
        started_at=_iso(started_ms),
        finished_at=_iso(finished_ms),
        duration_s=duration,
        total=total,
        succeeded=succeeded,
        failed=failed,
        failed_percent=failed_percent,
        tolerated_failure_percent=tolerated,
        within_tolerance=failed_percent <= tolerated + 1e-9,
        failed_ages=sorted({f.age for f in failures}),
        cost_estimate=_cost_of(plan),
        ages=ages,
        failures=failures,
        collated_at=now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        notes=notes,
    )


def _cost_of(plan: Mapping[str, Any]) -> dict[str, Any]:
    totals = plan.get("totals") or {}
    cost = totals.get("cost_estimate_usd")
    out: dict[str, Any] = {}
    if cost is not None:
        out["cost_estimate_usd"] = cost
    if totals.get("estimate_note"):
        out["estimate_note"] = totals["estimate_note"]
    return out


_PER_JOB_PARAMS = {"start_index", "end_index", "age", "slice_size", "run_id"}


def lineage(plan: Mapping[str, Any], facts: Sequence[Mapping[str, Any]], slices: Sequence[SliceOutcome]) -> dict[str, Any]:
    """Where the run came from: manifest version + sha256, image, job definition ARN:revision, input, parameters."""
    items = plan.get("items") or []
    first_params = dict((items[0].get("parameters") or {}) if items else {})
    job_definitions = sorted({f["job_definition"] for f in facts if f.get("job_definition")})
    images = sorted({f["image"] for f in facts if f.get("image")})
    metric_lineages = [s.metrics_lineage for s in slices if s.metrics_lineage]
    if not images:
        images = sorted({str(m["image"]) for m in metric_lineages if m.get("image")})
    if not images:
        request = plan.get("job_definition_request") or {}
        image = (request.get("ContainerProperties") or {}).get("Image")
        images = [image] if image else []
    git_revisions = sorted({str(m["git_revision"]) for m in metric_lineages if m.get("git_revision")})
    return {
        "run_id": plan.get("run_id"),
        "manifest": dict(plan.get("manifest") or {}),
        "image": images[0] if len(images) == 1 else (images or None),
        "job_definition": (job_definitions[0] if len(job_definitions) == 1 else job_definitions)
        or (plan.get("job_definition") or {}).get("ref"),
        "job_queue": plan.get("job_queue"),
        "input": plan.get("input") or first_params.get("input"),
        "output": plan.get("output") or first_params.get("output"),
        "results_uri": plan.get("results_uri"),
        "parameters": {k: v for k, v in first_params.items() if k not in _PER_JOB_PARAMS},
        "git_revision": git_revisions[0] if len(git_revisions) == 1 else (git_revisions or None),
    }


# --------------------------------------------------------------------------------------------
# Renderings: CSV, SNS subject + message
# --------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "run_id", "age", "start_index", "end_index", "status", "status_reason", "exit_code", "attempts",
    "duration_s", "started_at", "stopped_at", "job_id", "array_index", "log_stream", "log_url",
    "final_loss", "heldout_c_index", "n_patients", "epochs", "wall_time_s", "peak_rss_mb", "device",
)


def summary_csv(summary: Summary) -> str:
    """One row per (age, slice); metrics as columns, so the file opens in a spreadsheet as it is."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for s in summary.slices():
        row = {k: v for k, v in s.model_dump().items() if k in CSV_COLUMNS}
        row["run_id"] = summary.run_id
        for key in ("final_loss", "heldout_c_index", "n_patients", "epochs", "wall_time_s", "peak_rss_mb", "device"):
            row[key] = (s.metrics or {}).get(key)
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def summary_json(summary: Summary) -> str:
    return json.dumps(summary.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"



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


def message(summary: Summary, uris: Mapping[str, str], region: str = "us-east-1") -> str:
    """The SNS summary body: plain text that reads on a phone."""
    lines = [f"Run {summary.run_id}", ""]
    verdict = (
        "all succeeded" if summary.failed == 0
        else ("within tolerance" if summary.within_tolerance else "ABOVE tolerance")
    )
    lines.append(
        f"{summary.succeeded} succeeded / {summary.failed} failed of {summary.total} jobs (age x slice) - {verdict} "
        f"({summary.failed_percent:.3g}% failed, {summary.tolerated_failure_percent:g}% tolerated)"
    )
    ages = sorted({a.age for a in summary.ages})
    if ages:
        lines.append(f"Ages: {format_ages(ages)}")
    if summary.failed_ages:
        lines.append(f"Failed ages: {format_ages(summary.failed_ages)}")
    lines.append(f"Duration: {format_duration(summary.duration_s)}"
                 + (f" ({summary.started_at} to {summary.finished_at})" if summary.started_at else ""))
    cost = summary.cost_estimate.get("cost_estimate_usd")
    lines.append(f"Cost estimate: {format_cost(cost)}")
    manifest = summary.lineage.get("manifest") or {}
    if manifest.get("key"):
        lines.append(f"Manifest: s3://{manifest.get('bucket')}/{manifest.get('key')}"
                     + (f" (sha256 {str(manifest['sha256'])[:12]})" if manifest.get("sha256") else ""))
    if summary.failures:
        lines += ["", f"Failures ({len(summary.failures)}):"]
        for f in summary.failures[:MAX_FAILURES_IN_MESSAGE]:
            detail = []
            if f.exit_code is not None:
                detail.append(f"exit {f.exit_code}")
            if f.attempts:
                detail.append(f"{f.attempts} attempt{'s' if f.attempts != 1 else ''}")
            extra = f" ({', '.join(detail)})" if detail else ""
            lines.append(f"- age {f.age}, slice {f.start_index}-{f.end_index}: {f.reason}{extra}")
            if f.log_url:
                lines.append(f"  log: {f.log_url}")
        if len(summary.failures) > MAX_FAILURES_IN_MESSAGE:
            lines.append(f"... and {len(summary.failures) - MAX_FAILURES_IN_MESSAGE} more in the report.")
    lines += ["", f"Report: {uris.get('report_uri', '')}"]
    if uris.get("report_console_url"):
        lines.append(f"  open: {uris['report_console_url']}")
    lines.append(f"Summary: {uris.get('summary_uri', '')}")
    if summary.failures:
        lines.append(f"Retry manifest (failed pairs only): {uris.get('retry_manifest_uri', '')}")
        bucket = manifest.get("bucket") or ""
        if bucket:
            lines.append(
                f"  rerun: aws s3 cp {uris.get('retry_manifest_uri', '')} s3://{bucket}/manifests/{summary.run_name}-retry.yaml"
            )
    else:
        lines.append("Retry manifest: empty (nothing failed)")
    for note in summary.notes[:5]:
        lines.append(f"Note: {note}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Retry manifest
# --------------------------------------------------------------------------------------------

_RETRY_SUFFIX = re.compile(r"^(.*)-retry(\d*)$")


def retry_run_name(run_name: str) -> str:
    """aladyn -> aladyn-retry -> aladyn-retry2 -> aladyn-retry3."""
    match = _RETRY_SUFFIX.match(run_name)
    if not match:
        return f"{run_name}-retry"
    return f"{match.group(1)}-retry{int(match.group(2) or 1) + 1}"


def failed_pairs(summary: Summary) -> list[tuple[int, int, int]]:
    return sorted({(f.age, f.start_index, f.end_index) for f in summary.failures})


def retry_manifests(
    original: Mapping[str, Any], pairs: Sequence[tuple[int, int, int]], run_name: str | None = None
) -> list[dict[str, Any]]:
    """The original manifest narrowed to exactly the failed (age, slice) pairs, with a new run name.

    Ages that failed the same slices share one manifest; when different ages failed different
    slices, one manifest per group keeps the rerun to exactly the failed pairs (no cross product).
    """
    if not pairs:
        return []
    by_age: dict[int, list[tuple[int, int]]] = {}
    for age, start, end in pairs:
        by_age.setdefault(age, []).append((start, end))
    groups: dict[tuple[tuple[int, int], ...], list[int]] = {}
    for age, spans in sorted(by_age.items()):
        groups.setdefault(tuple(sorted(set(spans))), []).append(age)
    base_name = retry_run_name(str(original.get("run_name") or run_name or "run"))
    docs = []
    for n, (spans, ages) in enumerate(sorted(groups.items(), key=lambda g: g[1][0]), start=1):
        suffix = "" if len(groups) == 1 else f"-{n}"
        name = base_name[: RUN_NAME_MAX - len(suffix)] + suffix
        doc = dict(original)
        doc["run_name"] = name
        doc["ages"] = list(ages)
        doc["slices"] = [{"start_index": s, "end_index": e} for s, e in spans]
        docs.append(doc)
    return docs


def retry_manifest_yaml(original_text: str, summary: Summary) -> str:
    """retry-manifest.yaml: empty when nothing failed; else the narrowed manifest(s) under a header."""
    pairs = failed_pairs(summary)
    if not pairs:
        return ""
    original = yaml.safe_load(original_text) or {}
    if not isinstance(original, dict):
        raise ValueError("the original manifest is not a YAML mapping")
    docs = retry_manifests(original, pairs, summary.run_name)
    manifest = summary.lineage.get("manifest") or {}
    header = [
        f"# Retry of run {summary.run_id}: only the (age, slice) pairs that failed.",
        f"# Original: s3://{manifest.get('bucket')}/{manifest.get('key')}"
        f" version {manifest.get('version_id')} sha256 {manifest.get('sha256')}",
        "# Failed: " + "; ".join(f"age {a} slice {s}-{e}" for a, s, e in pairs),
        "# Rerun: put this file into the stack bucket under manifests/.",
    ]
    if len(docs) > 1:
        header.append(
            f"# Ages failed different slices: {len(docs)} manifests, one per YAML document; "
            "split at '---' and put each into manifests/."
        )
    body = "---\n".join(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None) for doc in docs)
    return "\n".join(header) + "\n" + body


def retry_documents(text: str) -> list[str]:
    """The YAML documents of a retry manifest (one, unless ages failed different slices)."""
    if not text.strip():
        return []
    return [doc for doc in re.split(r"(?m)^---\s*$", text) if doc.strip()]


def validate_retry_manifest(text: str) -> None:
    """Check each document against the project's manifest model (schema only: the stack's own
    limits are checked again when the retry is submitted). Raises ManifestInvalid."""
    from agesweep.manifest import parse_manifest
    from agesweep.settings import Settings

    schema_only = Settings(age_min=0, age_max=150)
    for document in retry_documents(text):
        parse_manifest(document.encode("utf-8"), "retry-manifest.yaml", schema_only)


# --------------------------------------------------------------------------------------------
# AWS readers and the writer (boto3 clients passed in)
# --------------------------------------------------------------------------------------------


def chunks(items: Sequence[str], size: int = DESCRIBE_JOBS_BATCH) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def read_jobs(batch: Any, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """DescribeJobs, 100 ids per call; ids Batch no longer knows are simply absent."""
    ids = sorted({j for j in job_ids if j})
    found: dict[str, dict[str, Any]] = {}
    for part in chunks(ids):
        for job in batch.describe_jobs(jobs=list(part))["jobs"]:
            found[job["jobId"]] = job
    return found


def read_children(batch: Any, array_job_id: str, size: int) -> list[dict[str, Any]]:
    """All children of an array job: ListJobs by arrayJobId per status (paged), then DescribeJobs.

    Terminal statuses come first, so a finished array job costs one or two ListJobs pages.
    """
    paginator = batch.get_paginator("list_jobs")
    seen: dict[str, dict[str, Any]] = {}
    for status in _LIST_STATUSES:
        for page in paginator.paginate(arrayJobId=array_job_id, jobStatus=status):
            for summary in page.get("jobSummaryList", []):
                seen[summary["jobId"]] = summary
        if size and len(seen) >= size:
            break
    described = read_jobs(batch, seen)
    return [described.get(job_id, summary) for job_id, summary in seen.items()]


def read_metrics(s3: Any, bucket: str, prefix: str) -> dict[tuple[int, int, int], dict[str, Any]]:
    """Every metrics JSON under <prefix>metrics/ (the trainer's upload), keyed by (age, start, end)."""
    found: dict[tuple[int, int, int], dict[str, Any]] = {}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}metrics/"):
        for obj in page.get("Contents", []):
            key = parse_metrics_key(obj["Key"])
            if key is None:
                continue
            try:
                found[key] = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            except ValueError:
                continue
    return found


def read_manifest(s3: Any, ref: Mapping[str, Any]) -> str:
    """The original manifest text, at the exact version the run was started from."""
    kwargs: dict[str, Any] = {"Bucket": ref["bucket"], "Key": ref["key"]}
    if ref.get("version_id"):
        kwargs["VersionId"] = ref["version_id"]
    return s3.get_object(**kwargs)["Body"].read().decode("utf-8")


def _split_s3(uri: str) -> tuple[str, str] | None:
    if not uri or not uri.startswith("s3://"):
        return None
    bucket, _, prefix = uri[5:].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def run_prefix(run_id: str) -> str:
    return f"runs/{run_id}/"


def collate_run(
    plan: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    *,
    bucket: str,
    log_group: str = DEFAULT_LOG_GROUP,
    region: str | None = None,
    batch: Any = None,
    s3: Any = None,
    now: datetime | None = None,
    validate_manifest: Any = validate_retry_manifest,
) -> dict[str, Any]:
    """Read what AWS knows about the run, collate it, write the four files, return the collate output.

    ``validate_manifest`` (text -> None, raises on a bad manifest) checks the retry manifest with
    the project's manifest model before it is written.
    """
    import boto3  # deferred: the pure functions above need no AWS SDK

    region = region or region_from_env()
    batch = batch or boto3.client("batch", region_name=region)
    s3 = s3 or boto3.client("s3", region_name=region)
    run_id = str(plan["run_id"])

    job_ids = [((r or {}).get("job") or {}).get("JobId") or (parse_cause((r or {}).get("error")) or {}).get("jobId")
               for r in results]
    jobs = read_jobs(batch, [j for j in job_ids if j])
    sizes = {str(i["job_name"]): int(i.get("array_size") or 0) for i in plan.get("items") or []}
    children: dict[str, list[dict[str, Any]]] = {}
    for result, job_id in zip(results, job_ids):
        size = sizes.get(str((result or {}).get("job_name")), int((result or {}).get("array_size") or 0))
        if job_id and size >= 2:
            children[job_id] = read_children(batch, job_id, size)

    metrics_location = _split_s3(str(plan.get("results_uri") or "")) or (bucket, run_prefix(run_id))
    metrics = read_metrics(s3, *metrics_location)

    summary = collate(plan, results, jobs, children, metrics, log_group=log_group, region=region, now=now)

    prefix = run_prefix(run_id)
    uris = {
        "summary_uri": f"s3://{bucket}/{prefix}summary.json",
        "report_uri": f"s3://{bucket}/{prefix}report.html",
        "retry_manifest_uri": f"s3://{bucket}/{prefix}retry-manifest.yaml",
        "report_console_url": s3_console_url(bucket, f"{prefix}report.html", region),
    }

    retry_text = ""
    if summary.failures:
        try:
            retry_text = retry_manifest_yaml(read_manifest(s3, plan["manifest"]), summary)
        except Exception as exc:  # noqa: BLE001 - the summary must still go out; say what went wrong
            summary.notes.append(f"retry manifest could not be built: {type(exc).__name__}: {exc}")
            retry_text = (
                f"# Retry manifest for run {summary.run_id} could not be built: {type(exc).__name__}: {exc}\n"
                "# Failed: " + "; ".join(f"age {a} slice {s}-{e}" for a, s, e in failed_pairs(summary)) + "\n"
            )
        else:
            if validate_manifest is not None:
                try:
                    validate_manifest(retry_text)
                except Exception as exc:  # noqa: BLE001 - keep the file, flag it loudly
                    problem = " ".join(str(exc).split())
                    summary.notes.append(f"retry manifest does not validate: {problem}")
                    retry_text = f"# WARNING: this retry manifest does not validate: {problem}\n" + retry_text

    from agesweep.report import render_report  # deferred: matplotlib import is slow

    files = {
        "summary.json": (summary_json(summary), "application/json"),
        "summary.csv": (summary_csv(summary), "text/csv; charset=utf-8"),
        "report.html": (render_report(summary, uris), "text/html; charset=utf-8"),
        "retry-manifest.yaml": (retry_text, "application/yaml; charset=utf-8"),
    }
    for name, (body, content_type) in files.items():
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=body.encode("utf-8"), ContentType=content_type)

    return {
        "run_id": summary.run_id,
        "total": summary.total,
        "succeeded": summary.succeeded,
        "failed": summary.failed,
        "within_tolerance": summary.within_tolerance,
        "subject": subject(summary),
        "message": message(summary, uris, region),
        "summary_uri": uris["summary_uri"],
        "report_uri": uris["report_uri"],
        "retry_manifest_uri": uris["retry_manifest_uri"],
    }


__all__ = [
    "AgeOutcome", "Failure", "SliceOutcome", "Summary", "collate", "collate_run", "console_encode",
    "failed_pairs", "item_slices", "job_facts", "log_url", "message", "parse_cause", "read_children",
    "read_jobs", "read_manifest", "read_metrics", "retry_manifest_yaml", "retry_manifests",
    "retry_run_name", "retry_documents", "subject", "summary_csv", "summary_json", "validate_retry_manifest",
]
