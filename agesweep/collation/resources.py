"""Right-sizing by measurement: what every job asked for against what it used, and what the
next run should ask for.

Asked: the job's own description (what Batch ran), else the plan item's container overrides,
else the stack's job definition resources recorded in the plan. Used: the trainer's metrics JSON
(``peak_rss_mb``, ``cpu_seconds``, ``wall_time_s``); a job without one is timed by Batch
(started..stopped) and charged its requested vCPUs for that time (an upper bound).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agesweep.collation.facts import JobFacts
from agesweep.contracts import (
    JobMetrics,
    Plan,
    PlanItem,
    ResourceRecommendation,
    ResourceUse,
    RunResources,
    SliceOutcome,
)
from agesweep.text import format_memory

HEADROOM = 1.3  # peak memory x this: RSS varies with the data and the allocator
GIB_PER_VCPU_CLASSES = (2, 4, 8, 16)  # c, m, r and x families: memory per vCPU
ECS_RESERVE = 1 / 16  # ECS keeps some instance memory back: a c6i.large offers ~3.8 of its 4 GiB
MEMORY_STEP_MIB = 256
MAX_VCPUS = 256
MAX_MEMORY_MIB = 2_097_152  # the manifest's job.memory_mib limit
IDLE_CORE = 0.1  # a vCPU busy less than this share of the time is not worth asking for


@dataclass(frozen=True)
class SliceJob:
    """One (point, slice) with the plan item it came from and the Batch job that ran it."""

    item: PlanItem | None
    outcome: SliceOutcome
    facts: JobFacts | None


@dataclass(frozen=True)
class Asked:
    vcpus: float | None
    memory_mib: int | None
    gpus: int


def _overridden(item: PlanItem | None, kind: str) -> float | None:
    for requirement in (item.container_overrides.ResourceRequirements or []) if item else []:
        if requirement.Type == kind:
            return float(requirement.Value)
    return None


def asked(job: SliceJob, plan: Plan) -> Asked:
    """What the job asked for: its description, else its item's overrides, else the stack's defaults."""
    facts, stack = job.facts, plan.stack_resources
    vcpus = (facts.vcpus if facts else None) or _overridden(job.item, "VCPU") or (stack.vcpus if stack else None)
    memory = (facts.memory_mib if facts else None) or _overridden(job.item, "MEMORY") or (stack.memory_mib if stack else None)
    gpus = (facts.gpus if facts else None) or _overridden(job.item, "GPU") or (stack.gpus if stack else 0)
    return Asked(vcpus, None if memory is None else int(memory), int(gpus or 0))


def wall_s(job: SliceJob) -> float | None:
    """The job's wall time: Batch's started..stopped (what the job held its vCPUs for, imports
    included, as its cpu_seconds are), else the trainer's own."""
    if job.outcome.duration_s is not None:
        return job.outcome.duration_s
    metrics = job.outcome.metrics or JobMetrics()
    return metrics.wall_time_s


def _largest(values: Sequence[float | int | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return max(present) if present else None


def use_of(jobs: Sequence[SliceJob], plan: Plan, age: int | None = None) -> ResourceUse:
    """Requested against used over these jobs (the ones that ran: a wall time or metrics)."""
    ran = [j for j in jobs if wall_s(j) is not None or j.outcome.metrics is not None]
    asks = [asked(j, plan) for j in ran] or [asked(j, plan) for j in jobs[:1]]
    cpu, wall, busy_cpu, busy_wall, measured_cpu = 0.0, 0.0, 0.0, 0.0, True
    for job, ask in zip(ran, asks, strict=False):
        seconds = wall_s(job) or 0.0
        wall += seconds
        used = job.outcome.metrics.cpu_seconds if job.outcome.metrics else None
        if used is None:
            measured_cpu = False
            used = seconds * (ask.vcpus or 0.0)
        else:
            busy_cpu, busy_wall = busy_cpu + used, busy_wall + seconds
        cpu += used
    return ResourceUse(
        age=age,
        jobs=len(ran),
        measured_jobs=sum(1 for j in ran if j.outcome.metrics and j.outcome.metrics.peak_rss_mb is not None),
        vcpus_requested=_largest([a.vcpus for a in asks]),
        memory_mib_requested=None if (m := _largest([a.memory_mib for a in asks])) is None else int(m),
        gpus_requested=max([a.gpus for a in asks], default=0),
        peak_memory_mib=_largest([j.outcome.metrics.peak_rss_mb for j in ran if j.outcome.metrics]),
        cpu_seconds=round(cpu, 3) if ran else None,
        cpu_seconds_measured=bool(ran) and measured_cpu,
        wall_s=round(wall, 3) if ran else None,
        busy_vcpus=round(busy_cpu / busy_wall, 3) if busy_wall > 0 else None,
    )


def _power_of_two(value: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(value, 1.0))))


def usable_mib(vcpus: int, gib_per_vcpu: int) -> int:
    """The memory a job can ask for and still pack on a `gib_per_vcpu` instance class."""
    usable = vcpus * gib_per_vcpu * 1024 * (1 - ECS_RESERVE)
    return int(usable // MEMORY_STEP_MIB * MEMORY_STEP_MIB)


def recommend(peak_mib: float, busy_vcpus: float | None, requested_vcpus: float | None) -> ResourceRecommendation:
    """The next run's vCPUs and memory per job, from the largest peak RSS and the busiest CPU use.

    * vCPUs: the average vCPUs kept busy (CPU seconds / wall seconds), rounded up to a power of two
      (1, 2, 4, ...: instance sizes are, so jobs tile an instance); a core busy under 10 % is not
      asked for. Without CPU seconds the request is kept (rounded to a power of two).
    * memory: peak x 1.3, rounded up to the first of v x 2 / 4 / 8 / 16 GiB (the c, m, r, x
      families' memory per vCPU) less 1/16 that ECS keeps back, in 256 MiB steps — so 2 vCPUs and a
      2 GB peak ask 3840 MiB and two such jobs fill a c6i.xlarge. A peak above v x 16 GiB doubles
      the vCPUs until one class holds it.
    """
    if busy_vcpus is not None:
        vcpus = _power_of_two(max(1.0, math.ceil(busy_vcpus - IDLE_CORE)))
        why = f"{busy_vcpus:.2g} vCPUs busy on average"
    else:
        vcpus = _power_of_two(requested_vcpus or 1.0)
        why = "vCPUs as requested (no CPU seconds measured)"
    target = peak_mib * HEADROOM
    while True:
        fits = [usable_mib(vcpus, k) for k in GIB_PER_VCPU_CLASSES if usable_mib(vcpus, k) >= target]
        if fits or vcpus >= MAX_VCPUS:
            memory = min(fits[0] if fits else usable_mib(vcpus, GIB_PER_VCPU_CLASSES[-1]), MAX_MEMORY_MIB)
            break
        vcpus *= 2
    return ResourceRecommendation(
        vcpus=vcpus,
        memory_mib=memory,
        reason=f"{why}; peak {format_memory(peak_mib)} x {HEADROOM:g} = {format_memory(target)}, "
        f"rounded up to pack on {vcpus}-vCPU instance classes",
    )


def run_resources(plan: Plan, jobs: Sequence[SliceJob]) -> RunResources:
    """Per age (the trainer's; over all its points) and overall: asked against used, and the
    recommendation for the next run. An own job has no ages: overall only."""
    by_age: dict[int, list[SliceJob]] = {}
    for job in jobs:
        if job.outcome.age is not None:
            by_age.setdefault(job.outcome.age, []).append(job)
    overall = use_of(jobs, plan)
    recommendation = None
    if overall.peak_memory_mib is not None:
        recommendation = recommend(overall.peak_memory_mib, overall.busy_vcpus, overall.vcpus_requested)
    return RunResources(
        overall=overall,
        ages=[use_of(group, plan, age) for age, group in sorted(by_age.items())],
        recommendation=recommendation,
    )
