"""Text for people: durations, costs, age ranges, one-line ASCII (SNS subjects)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

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
        text = f"up to ${cost['compute_spot_at_timeout']:,.2f} on spot"
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
