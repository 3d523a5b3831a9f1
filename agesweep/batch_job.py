"""One Batch job description (DescribeJobs, ListJobs, an EventBridge "Batch Job State Change"
detail, a Step Functions Catch's Cause once camel-cased) as a lenient pydantic model.

Batch adds members over time, so unknown members are ignored and every member is optional:
these models read what AWS sends, they are no contract of this project.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agesweep.aws import camel_case


class BatchShape(BaseModel):
    """A shape AWS sends: camelCase members, unknown ones ignored."""

    model_config = ConfigDict(extra="ignore")


class ContainerDetail(BatchShape):
    exitCode: int | None = None
    logStreamName: str | None = None
    image: str | None = None
    reason: str | None = None


class Attempt(BatchShape):
    container: ContainerDetail = Field(default_factory=ContainerDetail)
    startedAt: float | None = None
    stoppedAt: float | None = None
    statusReason: str | None = None

    @property
    def duration_ms(self) -> float | None:
        if self.startedAt and self.stoppedAt:
            return self.stoppedAt - self.startedAt
        return None


class ArrayProperties(BatchShape):
    index: int | None = None
    size: int | None = None
    statusSummary: dict[str, int] = Field(default_factory=dict, description="Children per status (SUCCEEDED, FAILED, ...).")

    @field_validator("statusSummary", mode="before")
    @classmethod
    def _status_names(cls, value: Any) -> Any:
        """Status names are upper case; camel-casing a description lowers their first letter."""
        return {str(k).upper(): v for k, v in value.items()} if isinstance(value, dict) else value


class RetryStrategy(BatchShape):
    attempts: int | None = None


class JobDescription(BatchShape):
    jobId: str | None = None
    jobName: str | None = None
    jobQueue: str | None = None
    jobDefinition: str | None = None
    status: str | None = None
    statusReason: str | None = None
    createdAt: float | None = None
    startedAt: float | None = None
    stoppedAt: float | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    container: ContainerDetail = Field(default_factory=ContainerDetail)
    arrayProperties: ArrayProperties = Field(default_factory=ArrayProperties)
    retryStrategy: RetryStrategy = Field(default_factory=RetryStrategy)
    parameters: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, description: Mapping[str, Any]) -> JobDescription:
        """Read a description in either casing (Step Functions hands them over in PascalCase)."""
        return cls.model_validate(camel_case(dict(description)))

    @property
    def last_attempt(self) -> Attempt:
        return self.attempts[-1] if self.attempts else Attempt()

    @property
    def exit_code(self) -> int | None:
        """The container's exit code, else the last attempt's."""
        if self.container.exitCode is not None:
            return self.container.exitCode
        return self.last_attempt.container.exitCode

    @property
    def log_stream(self) -> str | None:
        return self.container.logStreamName or self.last_attempt.container.logStreamName

    @property
    def reason(self) -> str | None:
        return self.statusReason or self.last_attempt.statusReason

    @property
    def array_index(self) -> int | None:
        """The array child's index, from arrayProperties or the ``<parent>:<index>`` job id."""
        if self.arrayProperties.index is not None:
            return self.arrayProperties.index
        tail = (self.jobId or "").rpartition(":")[2] if ":" in (self.jobId or "") else ""
        return int(tail) if tail.isdigit() else None
