"""Readable text for the stack's EventBridge alerts: a failed Batch job, a failed sweep execution.

A person on a phone should learn which run, which age, which attempt, why, and where the log is —
never a raw event JSON. The event's detail is read into small models (a Batch job description;
a Step Functions execution status change); the execution's history events too. ``read_history``
is the one AWS read.

``batch`` writes the failed-job alert, ``execution`` the failed-execution one (``history`` reads
what ended it), ``models`` holds the shapes and ``common`` the text helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agesweep.alerts.batch import batch_job_failed
from agesweep.alerts.common import explain_cause
from agesweep.alerts.execution import WHY, execution_failed
from agesweep.alerts.history import failure_from_history, read_history
from agesweep.alerts.models import Alert, AlertEvent, ExecutionDetail, HistoryFailure, PublishedAlert
from agesweep.links import DEFAULT_LOG_GROUP

BATCH_DETAIL_TYPE = "Batch Job State Change"
EXECUTION_DETAIL_TYPE = "Step Functions Execution Status Change"


def alert_for(
    event: Mapping[str, Any], *, sfn: Any = None, log_group: str = DEFAULT_LOG_GROUP, batch: Any = None,
    logs: Any = None, on_demand_queue: str | None = None,
) -> Alert | None:
    """Dispatch on detail-type; reads the execution history through ``sfn`` for execution events,
    an array job's children through ``batch`` and a job's log through ``logs``. None: no alert is due
    (a cancelled job, an array child, a spot job the state machine escalates to on-demand)."""
    envelope = AlertEvent.of(event)
    if envelope.detail_type == BATCH_DETAIL_TYPE:
        return batch_job_failed(envelope, log_group=log_group, batch=batch, logs=logs, on_demand_queue=on_demand_queue)
    if envelope.detail_type == EXECUTION_DETAIL_TYPE:
        arn = ExecutionDetail.model_validate(envelope.detail).executionArn
        history = read_history(sfn, arn) if sfn is not None and arn else []
        return execution_failed(envelope, history)
    raise ValueError(f"not an alert this stack sends: detail-type {envelope.detail_type!r}")


__all__ = [
    "BATCH_DETAIL_TYPE", "EXECUTION_DETAIL_TYPE", "WHY", "Alert", "AlertEvent", "ExecutionDetail", "HistoryFailure",
    "PublishedAlert", "alert_for", "batch_job_failed", "execution_failed", "explain_cause", "failure_from_history",
    "read_history",
]
