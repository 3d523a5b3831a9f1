"""The facts collation needs from one Batch job description: status, reason, exit code,
attempts, timing, log stream, array index, image and job definition."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from agesweep.batch_job import JobDescription


def iso_ms(ms: float | None) -> str | None:
    """Epoch milliseconds -> ISO 8601 UTC to the second (None for no time)."""
    if not ms or ms <= 0:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _duration_s(started: float | None, stopped: float | None) -> float | None:
    if started and stopped and started > 0 and stopped >= started:
        return round((stopped - started) / 1000, 3)
    return None


class JobFacts(BaseModel):
    """One job (or array child) as collation reads it."""

    model_config = ConfigDict(frozen=True)

    job_id: str | None = None
    status: str | None = None
    status_reason: str | None = None
    exit_code: int | None = None
    attempts: int = 0
    started_at: str | None = None
    stopped_at: str | None = None
    created_ms: float | None = None
    stopped_ms: float | None = None
    duration_s: float | None = None
    log_stream: str | None = None
    array_index: int | None = None
    image: str | None = None
    job_definition: str | None = None
    reclaims: int = 0  # attempts that lost their host (Host EC2*)

    @classmethod
    def of(cls, description: Mapping[str, Any]) -> JobFacts:
        """From a description in either casing (DescribeJobs, ListJobs, a Catch's Cause)."""
        return cls.of_job(JobDescription.of(description))

    @classmethod
    def of_job(cls, job: JobDescription) -> JobFacts:
        started = job.startedAt
        if not started and job.attempts:
            started = job.attempts[0].startedAt
        return cls(
            job_id=job.jobId,
            status=job.status,
            status_reason=job.reason,
            exit_code=job.exit_code,
            attempts=len(job.attempts),
            started_at=iso_ms(started),
            stopped_at=iso_ms(job.stoppedAt),
            created_ms=job.createdAt,
            stopped_ms=job.stoppedAt,
            duration_s=_duration_s(started, job.stoppedAt),
            log_stream=job.log_stream,
            array_index=job.array_index,
            image=job.container.image,
            job_definition=job.jobDefinition,
            reclaims=sum(1 for a in job.attempts if (a.statusReason or "").startswith("Host EC2")),
        )
