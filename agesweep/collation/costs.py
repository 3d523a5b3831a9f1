"""The cost a run actually incurred: every attempt's Batch seconds x the capacity it ran on, at
the prices the plan was made with, plus the state machine's transitions.

A job is charged its share of an instance (agesweep.pricing.hourly_rate): requested vCPUs,
memory above the vCPUs' included share, GPUs. Instance boot time and idle instances are not
in it (Batch scales the environments to zero), nor are Lambda, S3 and CloudWatch (cents).
"""

from __future__ import annotations

from collections.abc import Sequence

from agesweep.collation.resources import SliceJob, asked
from agesweep.contracts import IncurredCost, Plan
from agesweep.pricing import extra_memory_gib, hourly_rate, money, step_functions_cost


def incurred_cost(plan: Plan, jobs: Sequence[SliceJob]) -> IncurredCost:
    """Sum over the jobs that ran (each Batch job once, even when it trained several slices)."""
    prices = plan.totals.cost_estimate_usd.prices
    compute = job_hours = vcpu_hours = gpu_hours = extra_gib_hours = 0.0
    by_capacity: dict[str, int] = {}
    unmeasured, seen = 0, set()
    for job in jobs:
        facts = job.facts
        if facts is not None and facts.job_id:
            if facts.job_id in seen:
                continue
            seen.add(facts.job_id)
        ask = asked(job, plan)
        if facts is None or not facts.runs or ask.vcpus is None:
            unmeasured += 1 if job.outcome.status not in {"NOT_SUBMITTED", "MISSING"} else 0
            continue
        memory = ask.memory_mib or 0
        for seconds, capacity in facts.runs:
            hours = seconds / 3600
            compute += hours * hourly_rate(ask.vcpus, memory, ask.gpus, capacity, prices)
            job_hours += hours
            vcpu_hours += hours * ask.vcpus
            gpu_hours += hours * ask.gpus
            extra_gib_hours += hours * extra_memory_gib(ask.vcpus, memory, prices)
        last = facts.runs[-1][1]
        by_capacity[last] = by_capacity.get(last, 0) + 1
    transitions = plan.totals.state_transitions
    machine = step_functions_cost(transitions, prices)
    note = (
        f"Batch attempt seconds x requested resources at {prices.region} list prices as of {prices.as_of} "
        f"(${prices.vcpu_hour_spot:.4g}/vCPU-hour spot, ${prices.vcpu_hour_on_demand:.4g} on-demand); "
        f"spot unless the job ran on an on-demand environment; {transitions} state transitions, no retries counted"
    )
    return IncurredCost(
        total=money(compute + machine),
        compute=money(compute),
        step_functions=money(machine),
        job_hours=round(job_hours, 4),
        vcpu_hours=round(vcpu_hours, 4),
        gpu_hours=round(gpu_hours, 4),
        extra_memory_gib_hours=round(extra_gib_hours, 4),
        jobs_by_capacity=dict(sorted(by_capacity.items())),
        unmeasured_jobs=unmeasured,
        state_transitions=transitions,
        prices=prices,
        note=note,
    )
