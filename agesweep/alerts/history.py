"""An execution's history, read newest first: what ended it and the step failure behind it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agesweep.alerts.common import loads_json
from agesweep.alerts.models import HistoryEvent, HistoryFailure

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


def _read_event(found: HistoryFailure, event: HistoryEvent) -> None:
    """Fill what ``found`` still lacks from one event (events come newest first)."""
    kind = event.type
    if kind in _END_EVENTS and found.end_type is None:
        details = event.details(_END_EVENTS[kind])
        found.end_type, found.error, found.cause = kind, details.error, details.cause
    elif kind == "FailStateEntered" and found.fail_input is None:
        details = event.details("stateEnteredEventDetails")
        found.fail_input = loads_json(details.input)
        found.state = found.state or details.name
    elif kind.endswith("StateEntered") and found.state is None:
        found.state = event.details("stateEnteredEventDetails").name
    elif kind in _STEP_FAILURES and found.step_error is None:
        details = event.details(_STEP_FAILURES[kind])
        found.step_error = details.error or kind
        found.step_cause = details.cause
        found.step_resource = ":".join(x for x in (details.resourceType, details.resource) if x) or None


def failure_from_history(events: Iterable[Mapping[str, Any]]) -> HistoryFailure:
    """What ended the execution and the step failure behind it, from GetExecutionHistory events.

    Works on any event order (it sorts by id, newest first): the end event's error and cause, the
    state that was running, the failing step's error/cause/resource, and the Fail state's input.
    """
    found = HistoryFailure()
    for event in sorted((HistoryEvent.model_validate(e) for e in events), key=lambda e: e.id, reverse=True):
        _read_event(found, event)
    # A Fail state entered through a Catch carries the caught error at $.error.
    fail_input = found.fail_input if isinstance(found.fail_input, dict) else {}
    caught = fail_input.get("error")
    if found.step_error is None and isinstance(caught, dict):
        found.step_error, found.step_cause = caught.get("Error"), caught.get("Cause")
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
