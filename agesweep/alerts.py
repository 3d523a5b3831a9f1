"""Readable text for the stack's EventBridge alerts: a failed Batch job, a failed sweep execution.

A person on a phone should learn which run, which age, which attempt, why, and where the log is —
never a raw event JSON. The pure functions take the event (and, for executions, the history
events) as plain dicts; ``read_history`` is the one AWS read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from agesweep.links import DEFAULT_LOG_GROUP, batch_job_console_url, execution_console_url, log_url
from agesweep.text import SUBJECT_MAX, ascii_line, format_duration

BATCH_DETAIL_TYPE = "Batch Job State Change"
EXECUTION_DETAIL_TYPE = "Step Functions Execution Status Change"
MAX_CAUSE_CHARS = 3000
MAX_PROBLEM_LINES = 40
HISTORY_EVENT_CAP = 20_000

_END_EVENTS = {
    "ExecutionFailed": "executionFailedEventDetails",
    "ExecutionTimedOut": "executionTimedOutEventDetails",
    "ExecutionAborted": "executionAbortedEventDetails",
}
# Events that carry the error of a failing step (Task integrations, legacy Lambda tasks, Map/Parallel).
_STEP_FAILURES = {
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "TaskSubmitFailed": "taskSubmitFailedEventDetails",
    "TaskStartFailed": "taskStartFailedEventDetails",
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "LambdaFunctionTimedOut": "lambdaFunctionTimedOutEventDetails",
    "LambdaFunctionStartFailed": "lambdaFunctionStartFailedEventDetails",
    "LambdaFunctionScheduleFailed": "lambdaFunctionScheduleFailedEventDetails",
    "MapRunFailed": "mapRunFailedEventDetails",
}

WHY = {
    "ManifestRejected": "The manifest was rejected before anything ran: no job was submitted. Fix it and upload it again.",
    "ToleranceExceeded": "More ages failed than the manifest tolerates. The other ages ran; the run's retry-manifest.yaml reruns only the failed ones.",
    "States.Timeout": "The sweep ran past its time limit.",
}


class Alert(BaseModel):
    subject: str
    message: str
    run_id: str | None = None


# ------------------------------------------------------------------------------------ helpers


def _subject(text: str) -> str:
    return ascii_line(text)[:SUBJECT_MAX]


def _when(value: Any) -> str | None:
    """Epoch millis (Batch, Step Functions events) or ISO text -> ISO UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value)


def _ms(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp() * 1000
    return None




def explain_cause(cause: str | None, limit: int = MAX_CAUSE_CHARS) -> list[str]:
    """A cause as readable lines: a Lambda error JSON becomes its type and message lines (every
    ManifestInvalid problem on its own line); a Batch job description becomes its status reason."""
    if not cause:
        return []
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and ("errorMessage" in parsed or "errorType" in parsed):
        kind = str(parsed.get("errorType") or "Error")
        text = str(parsed.get("errorMessage") or "").strip()
        lines = [line.rstrip() for line in text.splitlines() if line.strip()]
        if len(lines) > 1:
            shown = [f"  - {line.strip()}" for line in lines[:MAX_PROBLEM_LINES]]
            if len(lines) > MAX_PROBLEM_LINES:
                shown.append(f"  ... and {len(lines) - MAX_PROBLEM_LINES} more")
            return [f"{kind} ({len(lines)} problems):", *shown]
        return [f"{kind}: {lines[0] if lines else '(no message)'}"]
    if isinstance(parsed, dict) and ("JobId" in parsed or "jobId" in parsed):
        reason = parsed.get("StatusReason") or parsed.get("statusReason") or "no reason given"
        job = parsed.get("JobName") or parsed.get("jobName") or parsed.get("JobId") or parsed.get("jobId")
        return [f"Batch job {job} {parsed.get('Status') or parsed.get('status') or 'FAILED'}: {reason}"]
    text = " ".join(cause.split())
    return [text if len(text) <= limit else text[: limit - 3] + "..."]


# ------------------------------------------------------------------------------------ Batch


def _param_or_tag(detail: Mapping[str, Any], param: str, tag: str) -> str | None:
    value = (detail.get("parameters") or {}).get(param)
    if value in (None, "", "none"):
        value = (detail.get("tags") or {}).get(tag)
    return str(value) if value not in (None, "") else None


def _slice_of(detail: Mapping[str, Any]) -> str | None:
    params = detail.get("parameters") or {}
    index = (detail.get("arrayProperties") or {}).get("index")
    try:
        start, end = int(params["start_index"]), int(params["end_index"])
        size = int(params.get("slice_size") or 0)
    except (KeyError, TypeError, ValueError):
        return (detail.get("tags") or {}).get("agesweep:slice")
    if index is not None and size > 0:
        child_start = start + int(index) * size
        return f"{child_start}-{min(child_start + size, end)}"
    return f"{start}-{end}"


def batch_job_failed(event: Mapping[str, Any], *, log_group: str = DEFAULT_LOG_GROUP, region: str | None = None) -> Alert:
    """The alert for one "Batch Job State Change" event with status FAILED."""
    detail = event.get("detail") or {}
    region = region or event.get("region") or "us-east-1"
    run_id = _param_or_tag(detail, "run_id", "agesweep:run_id")
    age = _param_or_tag(detail, "age", "agesweep:age")
    attempts = list(detail.get("attempts") or [])
    max_attempts = (detail.get("retryStrategy") or {}).get("attempts")
    container = detail.get("container") or {}
    last = attempts[-1] if attempts else {}
    exit_code = container.get("exitCode")
    if exit_code is None:
        exit_code = (last.get("container") or {}).get("exitCode")
    stream = container.get("logStreamName") or (last.get("container") or {}).get("logStreamName")
    reason = detail.get("statusReason") or last.get("statusReason") or "no reason given"
    index = (detail.get("arrayProperties") or {}).get("index")
    size = (detail.get("arrayProperties") or {}).get("size")
    job_id = str(detail.get("jobId") or "")
    slice_label = _slice_of(detail)

    what = f"age {age}" if age else "a job"
    subject = _subject(f"agesweep job failed: {what}, run {run_id or 'unknown'}")
    lines = [
        f"A Batch job of run {run_id or '(unknown run)'} failed: {what}"
        + (f", patients {slice_label}" if slice_label else "") + ".",
        "",
        f"Run: {run_id or 'unknown (no run_id parameter or agesweep:run_id tag)'}",
        f"Age: {age or 'unknown'}",
    ]
    if slice_label:
        lines.append(f"Slice: {slice_label}" + (f" (array child {index})" if index is not None else ""))
    if size:
        summary = (detail.get("arrayProperties") or {}).get("statusSummary") or {}
        lines.append(f"Array job: {size} children" + (
            f", {summary.get('FAILED', 0)} failed, {summary.get('SUCCEEDED', 0)} succeeded" if summary else ""))
    lines.append(f"Attempt: {len(attempts) or 1}" + (f" of {max_attempts}" if max_attempts else ""))
    lines.append(f"Reason: {reason}")
    lines.append(f"Exit code: {exit_code if exit_code is not None else 'none (the container did not exit on its own)'}")
    link = log_url(log_group, stream, region)
    lines.append(f"Log: {link}" if link else "Log: none (the job never started a container)")
    if len(attempts) > 1:
        lines += ["", "Attempts:"]
        for n, attempt in enumerate(attempts, start=1):
            code = (attempt.get("container") or {}).get("exitCode")
            took = None
            if attempt.get("startedAt") and attempt.get("stoppedAt"):
                took = format_duration((attempt["stoppedAt"] - attempt["startedAt"]) / 1000)
            extras = ", ".join(x for x in (f"exit {code}" if code is not None else "", took or "") if x)
            lines.append(f"  {n}. {attempt.get('statusReason') or 'no reason'}" + (f" ({extras})" if extras else ""))
    lines += [
        "",
        f"Job: {detail.get('jobName', '')} {job_id}",
        f"  {batch_job_console_url(job_id, region)}" if job_id else "",
        f"Job definition: {detail.get('jobDefinition', 'unknown')}",
        f"Image: {container.get('image', 'unknown')}",
        f"Queue: {detail.get('jobQueue', 'unknown')}",
    ]
    params = detail.get("parameters") or {}
    if params.get("input"):
        lines.append(f"Input: {params['input']}")
    if detail.get("stoppedAt"):
        lines.append(f"Stopped: {_when(detail['stoppedAt'])}")
    lines += ["", "The sweep goes on with the other ages; this one will be in the run's retry-manifest.yaml."]
    return Alert(subject=subject, message="\n".join(line for line in lines if line is not None) + "\n", run_id=run_id)


# ------------------------------------------------------------------------------------ executions


def _details(event: Mapping[str, Any], key: str | None) -> dict[str, Any]:
    return dict(event.get(key) or {}) if key else {}


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def failure_from_history(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What ended the execution and the step failure behind it, from GetExecutionHistory events.

    Works on any event order (it sorts by id, newest first). Returns end_type, error, cause, the
    state that was running, the failing step's error/cause/resource, and the Fail state's input.
    """
    ordered = sorted(events, key=lambda e: e.get("id", 0), reverse=True)
    found: dict[str, Any] = {"end_type": None, "error": None, "cause": None, "state": None,
                             "step_error": None, "step_cause": None, "step_resource": None, "fail_input": None}
    for event in ordered:
        kind = event.get("type", "")
        if kind in _END_EVENTS and found["end_type"] is None:
            details = _details(event, _END_EVENTS[kind])
            found.update(end_type=kind, error=details.get("error"), cause=details.get("cause"))
        elif kind == "FailStateEntered" and found["fail_input"] is None:
            details = event.get("stateEnteredEventDetails") or {}
            found["fail_input"] = _loads(details.get("input"))
            found["state"] = found["state"] or details.get("name")
        elif kind.endswith("StateEntered") and found["state"] is None:
            found["state"] = (event.get("stateEnteredEventDetails") or {}).get("name")
        elif kind in _STEP_FAILURES and found["step_error"] is None:
            details = _details(event, _STEP_FAILURES[kind])
            found["step_error"] = details.get("error") or kind
            found["step_cause"] = details.get("cause")
            resource = ":".join(str(x) for x in (details.get("resourceType"), details.get("resource")) if x)
            found["step_resource"] = resource or None
    # A Fail state entered through a Catch carries the caught error at $.error.
    fail_input = found["fail_input"] if isinstance(found["fail_input"], dict) else {}
    caught = fail_input.get("error") if isinstance(fail_input.get("error"), dict) else None
    if found["step_error"] is None and caught:
        found["step_error"], found["step_cause"] = caught.get("Error"), caught.get("Cause")
    return found


def history_is_enough(events: Sequence[Mapping[str, Any]]) -> bool:
    """Newest-first reading can stop once the end event and the failing step (or Fail state) are seen."""
    kinds = {e.get("type") for e in events}
    return bool(kinds & set(_END_EVENTS)) and bool(kinds & (set(_STEP_FAILURES) | {"FailStateEntered"}))


def read_history(sfn: Any, execution_arn: str, cap: int = HISTORY_EVENT_CAP) -> list[dict[str, Any]]:
    """GetExecutionHistory newest first, page by page, until the failure is explained (or the cap)."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "reverseOrder": True, "maxResults": 100,
                              "includeExecutionData": True}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page.get("events", []))
        token = page.get("nextToken")
        if not token or len(events) >= cap or history_is_enough(events):
            return events
        kwargs["nextToken"] = token


def _tolerance_lines(fail_input: Mapping[str, Any]) -> list[str]:
    collated = ((fail_input.get("collation") or {}).get("collated")) or {}
    plan = fail_input.get("plan") or {}
    if not collated:
        return []
    lines = [
        f"{collated.get('succeeded')} succeeded / {collated.get('failed')} failed of {collated.get('total')} jobs"
        f" ({plan.get('tolerated_failure_percent', 0)}% tolerated)."
    ]
    for key, label in (("report_uri", "Report"), ("retry_manifest_uri", "Retry manifest"), ("summary_uri", "Summary")):
        if collated.get(key):
            lines.append(f"{label}: {collated[key]}")
    return lines


def execution_failed(event: Mapping[str, Any], history: Iterable[Mapping[str, Any]] = ()) -> Alert:
    """The alert for one "Step Functions Execution Status Change" event (FAILED, TIMED_OUT, ABORTED)."""
    detail = event.get("detail") or {}
    region = event.get("region") or "us-east-1"
    run_id = str(detail.get("name") or "unknown")
    status = str(detail.get("status") or "FAILED")
    found = failure_from_history(history)
    error = found["error"] or detail.get("error")
    cause = found["cause"] or detail.get("cause")

    if status == "TIMED_OUT":
        headline = f"Run {run_id} timed out" + (f" in state {found['state']}" if found["state"] else "") + "."
    elif status == "ABORTED":
        headline = f"Run {run_id} was stopped (StopExecution)" + (f" in state {found['state']}" if found["state"] else "") + "."
    elif error == "ManifestRejected":
        headline = f"Run {run_id}: the manifest was rejected."
    elif error == "ToleranceExceeded":
        headline = f"Run {run_id}: more ages failed than tolerated."
    else:
        headline = f"Run {run_id} failed" + (f" in state {found['state']}" if found["state"] else "") + (f": {error}" if error else "") + "."

    lines = [headline, ""]
    if error in WHY:
        lines.append(WHY[error])
    elif status == "TIMED_OUT":
        lines.append("The execution ran past the state machine's TimeoutSeconds; jobs still running were not collated.")
    elif status == "ABORTED":
        lines.append("Someone or something stopped the execution; Batch jobs it submitted may still be running.")

    why: list[str] = []
    if error == "ToleranceExceeded" and isinstance(found["fail_input"], dict):
        why += _tolerance_lines(found["fail_input"])
    if found["step_error"] and error != "ToleranceExceeded":
        where = f" ({found['step_resource']})" if found["step_resource"] else ""
        cause_lines = explain_cause(found["step_cause"])
        if cause_lines and cause_lines[0].startswith(str(found["step_error"])):
            why += [f"Step error{where}:", *cause_lines]
        else:
            why += [f"Step error{where}: {found['step_error']}", *cause_lines]
    if not why and (error or cause):
        why += [f"Error: {error or 'unknown'}", *explain_cause(cause)]
    if why:
        lines += ["", *why]

    execution_input = _loads(detail.get("input")) or {}
    lines += ["", f"Run: {run_id}", f"Status: {status}"]
    if isinstance(execution_input, dict) and execution_input.get("key"):
        version = execution_input.get("version_id")
        lines.append(f"Manifest: s3://{execution_input.get('bucket')}/{execution_input['key']}"
                     + (f" (version {version})" if version else ""))
    start, stop = detail.get("startDate"), detail.get("stopDate")
    if start:
        lines.append(f"Started: {_when(start)}")
    if stop:
        lines.append(f"Stopped: {_when(stop)}")
    if _ms(start) and _ms(stop):
        lines.append(f"Duration: {format_duration((_ms(stop) - _ms(start)) / 1000)}")
    if detail.get("executionArn"):
        lines.append(f"Execution: {execution_console_url(detail['executionArn'], region)}")

    label = {"TIMED_OUT": "timed out", "ABORTED": "aborted"}.get(status, "failed")
    reason = {"ManifestRejected": "manifest rejected", "ToleranceExceeded": "too many ages failed"}.get(str(error), error or "")
    subject = _subject(f"agesweep run {label}: {run_id}" + (f" - {reason}" if reason and status == "FAILED" else ""))
    if len(subject) >= SUBJECT_MAX and reason:
        subject = _subject(f"agesweep {label} ({reason}): {run_id}")
    return Alert(subject=subject, message="\n".join(lines) + "\n", run_id=run_id)


def alert_for(event: Mapping[str, Any], *, sfn: Any = None, log_group: str = DEFAULT_LOG_GROUP) -> Alert:
    """Dispatch on detail-type; reads the execution history through ``sfn`` for execution events."""
    kind = event.get("detail-type") or event.get("detail_type")
    if kind == BATCH_DETAIL_TYPE:
        return batch_job_failed(event, log_group=log_group)
    if kind == EXECUTION_DETAIL_TYPE:
        arn = (event.get("detail") or {}).get("executionArn")
        history = read_history(sfn, arn) if sfn is not None and arn else []
        return execution_failed(event, history)
    raise ValueError(f"not an alert this stack sends: detail-type {kind!r}")


__all__ = [
    "Alert", "alert_for", "batch_job_failed", "execution_failed", "explain_cause", "failure_from_history",
    "read_history",
]
