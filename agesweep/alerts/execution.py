"""The alert for a failed, timed-out or stopped sweep execution."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from agesweep.alerts.common import epoch_ms, explain_cause, loads_json, subject_line, when
from agesweep.alerts.history import failure_from_history
from agesweep.alerts.models import Alert, AlertEvent, ExecutionDetail, HistoryFailure, ManifestPointer, ToleranceState
from agesweep.links import execution_console_url
from agesweep.text import SUBJECT_MAX, format_duration

WHY = {
    "ManifestRejected": "The manifest was rejected before anything ran: no job was submitted. Fix it and upload it again.",
    "ToleranceExceeded": "More ages failed than the manifest tolerates. The other ages ran; "
    "the run's retry-manifest.yaml reruns only the failed ones.",
    "States.Timeout": "The sweep ran past its time limit.",
}
_STATUS_LABELS = {"TIMED_OUT": "timed out", "ABORTED": "aborted"}
_ERROR_LABELS = {"ManifestRejected": "manifest rejected", "ToleranceExceeded": "too many ages failed"}


def _tolerance_lines(fail_input: Mapping[str, Any]) -> list[str]:
    try:
        state = ToleranceState.model_validate(fail_input)
    except ValidationError:  # not the shape the state machine passes: say nothing rather than fail
        return []
    collated = state.collation.collated if state.collation else None
    if collated is None or not collated.model_fields_set:
        return []
    tolerated = state.plan.tolerated_failure_percent if state.plan else 0
    lines = [
        f"{collated.succeeded} succeeded / {collated.failed} failed of {collated.total} jobs"
        f" ({tolerated}% tolerated)."
    ]
    for uri, label in ((collated.report_uri, "Report"), (collated.retry_manifest_uri, "Retry manifest"),
                       (collated.summary_uri, "Summary")):
        if uri:
            lines.append(f"{label}: {uri}")
    return lines


def _headline(run_id: str, status: str, error: str | None, state: str | None) -> str:
    where = f" in state {state}" if state else ""
    if status == "TIMED_OUT":
        return f"Run {run_id} timed out{where}."
    if status == "ABORTED":
        return f"Run {run_id} was stopped (StopExecution){where}."
    if error == "ManifestRejected":
        return f"Run {run_id}: the manifest was rejected."
    if error == "ToleranceExceeded":
        return f"Run {run_id}: more ages failed than tolerated."
    return f"Run {run_id} failed{where}" + (f": {error}" if error else "") + "."


_OWN_TAGS = frozenset({"agesweep:run_id", "agesweep:manifest_sha256", "agesweep:age", "agesweep:slice"})


def _job_age(text: Any) -> str | None:
    """A submitted job's age (`51`), or its point in words from its `agesweep:<axis>` tags (an own job)."""
    parsed = loads_json(text)
    if not isinstance(parsed, dict):
        return None
    params = parsed.get("Parameters") or parsed.get("parameters") or {}
    age = params.get("age") if isinstance(params, dict) else None
    tags = parsed.get("Tags") or parsed.get("tags") or {}
    point = [f"{k.removeprefix('agesweep:')} {v}" for k, v in tags.items()
             if k.startswith("agesweep:") and k not in _OWN_TAGS] if isinstance(tags, dict) else []
    if point:
        return " ".join([", ".join(point), *([f"age {age}"] if age is not None else [])])
    return str(age) if age is not None else None


def cancelled_lines(history: Iterable[Mapping[str, Any]]) -> list[str]:
    """What a stop cut short: the ages whose Batch job was submitted and had not ended."""
    started: dict[str, None] = {}
    ended: set[str] = set()
    for event in history:
        kind = str(event.get("type", ""))
        details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
        if kind == "TaskScheduled" and "submitJob" in str(details.get("resource", "")):
            age = _job_age(details.get("parameters"))
            if age is not None:
                started[age] = None
        elif kind in ("TaskSucceeded", "TaskFailed"):
            age = _job_age(details.get("output") or details.get("cause"))
            if age is not None:
                ended.add(age)
    cut = [age for age in started if age not in ended]
    unit = "age" if all(age.isdigit() for age in [*started, *ended]) else "job"
    lines = ["", f"Cancelled: {len(cut)} {unit}{'s' if len(cut) != 1 else ''} in flight"
             + (f" ({', '.join(cut[:40])})" if cut else "") + f"; {len(ended)} had finished before the stop.",
             "Their Batch jobs were terminated; each one's own alert is silent, this is the only message.",
             "No summary, report or retry manifest was written (the run did not reach CollateResults).",
             "Finished ages keep their outputs; a rerun of the same run skips them."]
    return lines


def _explanation(status: str, error: str | None) -> list[str]:
    if error in WHY:
        return [WHY[error]]
    if status == "TIMED_OUT":
        return ["The execution ran past the state machine's TimeoutSeconds; jobs still running were not collated."]
    if status == "ABORTED":
        return ["Someone or something stopped the execution (StopExecution or agesweep cancel)."]
    return []


def _why_lines(found: HistoryFailure, error: str | None, cause: str | None) -> list[str]:
    """The collated counts (too many failed), else the failing step's error, else the execution's."""
    if error == "ToleranceExceeded":
        why = _tolerance_lines(found.fail_input) if isinstance(found.fail_input, dict) else []
    elif found.step_error:
        where = f" ({found.step_resource})" if found.step_resource else ""
        cause_lines = explain_cause(found.step_cause)
        if cause_lines and cause_lines[0].startswith(found.step_error):
            why = [f"Step error{where}:", *cause_lines]
        else:
            why = [f"Step error{where}: {found.step_error}", *cause_lines]
    else:
        why = []
    if not why and (error or cause):
        why = [f"Error: {error or 'unknown'}", *explain_cause(cause)]
    return ["", *why] if why else []


def _execution_lines(detail: ExecutionDetail, run_id: str, status: str, region: str) -> list[str]:
    lines = ["", f"Run: {run_id}", f"Status: {status}"]
    execution_input = loads_json(detail.input)
    if isinstance(execution_input, dict):
        manifest = ManifestPointer.model_validate(execution_input)
        if manifest.key:
            lines.append(f"Manifest: s3://{manifest.bucket}/{manifest.key}"
                         + (f" (version {manifest.version_id})" if manifest.version_id else ""))
    start, stop = detail.startDate, detail.stopDate
    if start:
        lines.append(f"Started: {when(start)}")
    if stop:
        lines.append(f"Stopped: {when(stop)}")
    start_ms, stop_ms = epoch_ms(start), epoch_ms(stop)
    if start_ms and stop_ms:
        lines.append(f"Duration: {format_duration((stop_ms - start_ms) / 1000)}")
    if detail.executionArn:
        lines.append(f"Execution: {execution_console_url(detail.executionArn, region)}")
    return lines


def _executionsubject_line(run_id: str, status: str, error: str | None) -> str:
    label = _STATUS_LABELS.get(status, "failed")
    reason = _ERROR_LABELS.get(str(error), error or "")
    subject = subject_line(f"agesweep run {label}: {run_id}" + (f" - {reason}" if reason and status == "FAILED" else ""))
    if len(subject) >= SUBJECT_MAX and reason:
        subject = subject_line(f"agesweep {label} ({reason}): {run_id}")
    return subject


def execution_failed(event: Mapping[str, Any] | AlertEvent, history: Iterable[Mapping[str, Any]] = ()) -> Alert:
    """The alert for one "Step Functions Execution Status Change" event (FAILED, TIMED_OUT, ABORTED)."""
    envelope = AlertEvent.of(event)
    detail = ExecutionDetail.model_validate(envelope.detail)
    run_id = detail.name or "unknown"
    status = detail.status or "FAILED"
    history = list(history)
    found = failure_from_history(history)
    error = found.error or detail.error
    cause = found.cause or detail.cause
    lines = [
        _headline(run_id, status, error, found.state), "", *_explanation(status, error),
        *_why_lines(found, error, cause), *(cancelled_lines(history) if status == "ABORTED" else []),
        *_execution_lines(detail, run_id, status, envelope.region),
    ]
    return Alert(subject=_executionsubject_line(run_id, status, error), message="\n".join(lines) + "\n", run_id=run_id)
