"""The shapes an alert reads (EventBridge envelope, event details, history events, a Fail
state's input) and the ones it answers, as small lenient pydantic models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class Alert(BaseModel):
    subject: str
    message: str
    run_id: str | None = None


class PublishedAlert(BaseModel):
    """What the FormatAlert Lambda answers: the text it published and SNS's message id."""

    subject: str
    message: str
    message_id: str


class Lenient(BaseModel):
    """A shape AWS (or a state's input) sends: unknown members ignored, every member optional."""

    model_config = ConfigDict(extra="ignore")


class AlertEvent(Lenient):
    """The EventBridge envelope (``detail-type`` as EventBridge spells it, or powertools' ``detail_type``)."""

    detail_type: str | None = Field(None, validation_alias=AliasChoices("detail-type", "detail_type"))
    region: str = "us-east-1"
    detail: dict[str, Any] = Field(default_factory=dict)

    @field_validator("region", "detail", mode="before")
    @classmethod
    def _absent_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        if value:
            return value
        return "us-east-1" if info.field_name == "region" else {}

    @classmethod
    def of(cls, event: Mapping[str, Any] | AlertEvent) -> AlertEvent:
        return event if isinstance(event, AlertEvent) else cls.model_validate(event)


class ExecutionDetail(Lenient):
    """The detail of a "Step Functions Execution Status Change" event."""

    executionArn: str | None = None
    name: str | None = None
    status: str | None = None
    startDate: float | str | None = None
    stopDate: float | str | None = None
    input: str | None = None
    error: str | None = None
    cause: str | None = None


class ManifestPointer(Lenient):
    """The members of an execution's input that say which manifest it ran."""

    bucket: str | None = None
    key: str | None = None
    version_id: str | None = None


class EventDetails(Lenient):
    """The members of a history event's ``...EventDetails`` that explain a failure."""

    name: str | None = None
    input: str | None = None
    error: str | None = None
    cause: str | None = None
    resourceType: str | None = None
    resource: str | None = None


class HistoryEvent(BaseModel):
    """One GetExecutionHistory event: its id, type and (as an extra member) its details."""

    model_config = ConfigDict(extra="allow")

    id: int = 0
    type: str = ""

    def details(self, key: str | None) -> EventDetails:
        return EventDetails.model_validate((self.model_extra or {}).get(key or "") or {})


class HistoryFailure(BaseModel):
    """What ended an execution and the step failure behind it."""

    end_type: str | None = None
    error: str | None = None
    cause: str | None = None
    state: str | None = None
    step_error: str | None = None
    step_cause: str | None = None
    step_resource: str | None = None
    fail_input: Any = None


class _Collated(Lenient):
    total: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    report_uri: str | None = None
    retry_manifest_uri: str | None = None
    summary_uri: str | None = None


class _Collation(Lenient):
    collated: _Collated | None = None


class _TolerancePlan(Lenient):
    tolerated_failure_percent: int | float | None = 0


class ToleranceState(Lenient):
    """The ToleranceExceeded Fail state's input: the plan and the collation's counts."""

    plan: _TolerancePlan | None = None
    collation: _Collation | None = None


class LambdaError(Lenient):
    errorType: str | None = None
    errorMessage: Any = None


class CauseJob(Lenient):
    """The members of a failed job's description (a Catch's Cause, camel-cased) an alert names."""

    jobId: str | None = None
    jobName: str | None = None
    status: str | None = None
    statusReason: str | None = None
