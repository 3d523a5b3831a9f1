"""Text helpers the alerts share: SNS-safe subjects, times, and readable causes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from agesweep.alerts.models import CauseJob, LambdaError
from agesweep.aws import camel_case
from agesweep.text import SUBJECT_MAX, ascii_line

MAX_CAUSE_CHARS = 3000
MAX_PROBLEM_LINES = 40


def subject_line(text: str) -> str:
    return ascii_line(text)[:SUBJECT_MAX]


def when(value: Any) -> str | None:
    """Epoch millis (Batch, Step Functions events) or ISO text -> ISO UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value)


def epoch_ms(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp() * 1000
    return None


def loads_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def _lambda_error_lines(error: LambdaError) -> list[str]:
    kind = error.errorType or "Error"
    lines = [line.rstrip() for line in str(error.errorMessage or "").strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return [f"{kind}: {lines[0] if lines else '(no message)'}"]
    shown = [f"  - {line.strip()}" for line in lines[:MAX_PROBLEM_LINES]]
    if len(lines) > MAX_PROBLEM_LINES:
        shown.append(f"  ... and {len(lines) - MAX_PROBLEM_LINES} more")
    return [f"{kind} ({len(lines)} problems):", *shown]


def explain_cause(cause: str | None, limit: int = MAX_CAUSE_CHARS) -> list[str]:
    """A cause as readable lines: a Lambda error JSON becomes its type and message lines (every
    ManifestInvalid problem on its own line); a Batch job description becomes its status reason."""
    if not cause:
        return []
    parsed = loads_json(cause)
    if isinstance(parsed, dict) and ("errorMessage" in parsed or "errorType" in parsed):
        return _lambda_error_lines(LambdaError.model_validate(parsed))
    if isinstance(parsed, dict) and ("JobId" in parsed or "jobId" in parsed):
        job = CauseJob.model_validate(camel_case(parsed))
        return [f"Batch job {job.jobName or job.jobId} {job.status or 'FAILED'}: {job.statusReason or 'no reason given'}"]
    text = " ".join(cause.split())
    return [text if len(text) <= limit else text[: limit - 3] + "..."]
