"""The facts collation needs from one Batch job description: status, reason, exit code,
attempts, timing, log stream, array index, image, job definition, the resources it asked for and
the capacity (spot / on-demand) each attempt ran on."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agesweep.aws import camel_case
from agesweep.batch_job import JobDescription
from agesweep.pricing import ON_DEMAND, SPOT

# A Batch compute environment's ECS cluster is `<environment name>_Batch_<id>`; this stack's
# environments are named after their logical ids (SpotComputeEnvironment, OnDemandComputeEnvironment).
_ON_DEMAND_NAME = re.compile(r"on[-_]?demand", re.IGNORECASE)
_SPOT_NAME = re.compile(r"spot", re.IGNORECASE)


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
    vcpus: float | None = Field(None, description="Requested vCPUs (the job's resourceRequirements).")
    memory_mib: int | None = None
    gpus: int | None = None
    runs: tuple[tuple[float, str], ...] = Field((), description="(seconds, capacity) of every attempt that ran.")
    reclaims: int = 0  # attempts that lost their host (Host EC2*)

    @classmethod
    def of(cls, description: Mapping[str, Any]) -> JobFacts:
        """From a description in either casing (DescribeJobs, ListJobs, a Catch's Cause)."""
        raw = camel_case(dict(description))
        facts = cls.of_job(JobDescription.of(raw))
        vcpus, memory, gpus = requested_resources(raw.get("container") or {})
        return facts.model_copy(update={"vcpus": vcpus, "memory_mib": memory, "gpus": gpus, "runs": attempt_runs(raw)})

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


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def requested_resources(container: Mapping[str, Any]) -> tuple[float | None, int | None, int | None]:
    """(vCPUs, memory MiB, GPUs) a job asked for: resourceRequirements, else the legacy vcpus/memory."""
    asked = {
        str(r.get("type", "")).upper(): r.get("value")
        for r in container.get("resourceRequirements") or []
        if isinstance(r, Mapping)
    }
    vcpus = _number(asked.get("VCPU", container.get("vcpus")))
    memory = _number(asked.get("MEMORY", container.get("memory")))
    gpus = _number(asked.get("GPU"))
    return vcpus, None if memory is None else int(memory), None if gpus is None else int(gpus)


def capacity_of(container_instance_arn: str | None, job_queue: str | None) -> str:
    """spot or on-demand. The description never says so directly: an attempt's container instance
    names its compute environment's cluster, and a queue may be named on-demand. Nothing to go by
    (local mode, moto, Fargate) means spot: the stack's queue is spot-first."""
    for name in (container_instance_arn, job_queue):
        if name and _ON_DEMAND_NAME.search(name):
            return ON_DEMAND
        if name and _SPOT_NAME.search(name):
            return SPOT
    return SPOT


def attempt_runs(raw: Mapping[str, Any]) -> tuple[tuple[float, str], ...]:
    """(seconds, capacity) per attempt with start and stop times; the job's own times without any."""
    queue = raw.get("jobQueue")
    runs = []
    for attempt in raw.get("attempts") or []:
        if not isinstance(attempt, Mapping):
            continue
        seconds = _duration_s(attempt.get("startedAt"), attempt.get("stoppedAt"))
        if seconds is not None:
            arn = (attempt.get("container") or {}).get("containerInstanceArn")
            runs.append((seconds, capacity_of(arn, queue)))
    if not runs:
        seconds = _duration_s(raw.get("startedAt"), raw.get("stoppedAt"))
        if seconds is not None:
            runs.append((seconds, capacity_of(None, queue)))
    return tuple(runs)
