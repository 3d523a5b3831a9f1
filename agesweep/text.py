"""Text for people: durations, costs, age ranges, one-line ASCII (SNS subjects)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from agesweep.contracts import IncurredCost, ResourceUse

SUBJECT_MAX = 100  # SNS subject limit


def format_metric(value: float | None) -> str:
    """A held-out C-index or a loss: three decimals, the same everywhere (report, CLI tables)."""
    return "" if value is None else f"{value:.3f}"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_cost(cost: BaseModel | Mapping[str, Any] | float | None) -> str:
    """Human text for a plan's cost estimate (a number, or the planner's CostEstimate or dict of named figures)."""
    if isinstance(cost, BaseModel):
        cost = cost.model_dump()
    if cost is None or cost == {}:
        return "not estimated"
    if isinstance(cost, (int, float)):
        return f"${cost:,.2f}"
    if "compute_spot_at_timeout" in cost:
        text = _expected_text(cost) + f"up to ${cost['compute_spot_at_timeout']:,.2f} on spot"
        if isinstance(cost.get("compute_on_demand_at_timeout"), (int, float)):
            text += f" (${cost['compute_on_demand_at_timeout']:,.2f} on-demand)"
        if isinstance(cost.get("step_functions"), (int, float)):
            text += f" + ${cost['step_functions']:,.4g} Step Functions"
        if cost.get("vcpu_hours_at_timeout"):
            text += f"; at most {cost['vcpu_hours_at_timeout']:g} vCPU-hours"
        if cost.get("gpu_hours_at_timeout"):
            text += f", {cost['gpu_hours_at_timeout']:g} GPU-hours"
        return text
    parts = []
    for name, value in cost.items():
        label = str(name).replace("_usd", "").replace("_", " ")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        parts.append(f"{label} {value:g}" if "hours" in label else f"{label} ${value:,.2f}")
    return ", ".join(parts) if parts else "not estimated"


def usd(value: float) -> str:
    """Cents, except below a cent (two significant digits), so a $0.0042 run is not '$0.00'."""
    return f"${value:.2g}" if 0 < abs(value) < 0.01 else f"${value:,.2f}"


def _expected_text(cost: Mapping[str, Any]) -> str:
    """'expected ~$0.10 on spot ($0.29 on-demand), 6.1 vCPU-hours; ' when the plan has expected figures."""
    spot = cost.get("compute_spot_expected")
    if not isinstance(spot, (int, float)):
        return ""
    text = f"expected ~{usd(spot)} on spot"
    if isinstance(cost.get("compute_on_demand_expected"), (int, float)):
        text += f" ({usd(cost['compute_on_demand_expected'])} on-demand)"
    if cost.get("vcpu_hours_expected"):
        text += f", {cost['vcpu_hours_expected']:.3g} vCPU-hours"
    return text + "; "


def format_memory(mib: float | None) -> str:
    """MiB as people read it: 128 GiB, 3.8 GiB, 900 MiB."""
    if mib is None:
        return "unknown"
    if mib < 1000:
        return f"{mib:.0f} MiB"
    gib = mib / 1024
    return f"{gib:.1f} GiB" if gib < 10 else f"{gib:,.0f} GiB"


def format_ages(ages: Iterable[int]) -> str:
    """40, 41, 42, 45 -> '40-42, 45'."""
    ordered = sorted(set(ages))
    runs: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ", ".join(runs)


def ascii_line(text: str) -> str:
    """One line of ASCII (SNS subjects allow nothing else)."""
    text = text.replace("\u2014", "-").replace("\u2013", "-").replace("\u00d7", "x")
    text = "".join(c if c.isascii() and (c.isprintable() or c.isspace()) else "_" for c in text)
    return " ".join(text.split())


def incurred_text(cost: IncurredCost) -> str:
    """'$0.12 ($0.11 compute on 40 spot jobs, 6.4 vCPU-hours + $0.0032 Step Functions)'."""
    jobs = ", ".join(f"{n} {capacity}" for capacity, n in cost.jobs_by_capacity.items()) or "no"
    text = (
        f"{usd(cost.total)} ({usd(cost.compute)} compute: {jobs} job{'s' if sum(cost.jobs_by_capacity.values()) != 1 else ''}, "
        f"{cost.vcpu_hours:.3g} vCPU-hours"
    )
    if cost.gpu_hours:
        text += f", {cost.gpu_hours:.3g} GPU-hours"
    text += f"; {usd(cost.step_functions)} Step Functions)"
    if cost.unmeasured_jobs:
        text += f"; {cost.unmeasured_jobs} job(s) without start/stop times not counted"
    return text


def asked_used_text(use: ResourceUse) -> str:
    """'asked 32 vCPU / 128 GiB per job, used at most 2.0 GiB and 1.9 vCPUs busy' (what is known)."""
    asked_text = f"{use.vcpus_requested:g} vCPU" if use.vcpus_requested is not None else "unknown vCPU"
    asked_text += f" / {format_memory(use.memory_mib_requested)}" if use.memory_mib_requested is not None else ""
    used = []
    if use.peak_memory_mib is not None:
        used.append(f"at most {format_memory(use.peak_memory_mib)}")
    if use.busy_vcpus is not None:
        used.append(f"{use.busy_vcpus:.2g} vCPUs busy")
    return f"asked {asked_text} per job, used " + (" and ".join(used) if used else "unknown (no metrics)")
