"""A sweep point as words and as a key: its named axes' values (labels) and, for the trainer, its age.

A v1 run (ages x slices only) has no axis values, so its points read `age 60` as they always did;
an own workload's point reads `variable t2m, window 2020-01-01_2020-01-30` (PlanItem.label()).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agesweep.contracts import Summary

PointKey = tuple[tuple[tuple[str, str], ...], int | None]  # ((axis, value), ...), age


def point_key(point: Mapping[str, str], age: int | None) -> PointKey:
    """A hashable key of one point: two points with the same age but other axis values differ."""
    return tuple(point.items()), age


def point_label(point: Mapping[str, str], age: int | None) -> str:
    """`age 60`, `learning_rate 0.01, seed 1, age 60`, `variable t2m, window 2020-01-01_2020-01-30`."""
    parts = [f"{k} {v}" for k, v in point.items()]
    return ", ".join([*parts, *([f"age {age}"] if age is not None else [])])


def point_record(point: Mapping[str, str], age: int | None) -> dict[str, str]:
    """The point as summary.json's failed_points hold it: the axis values, and `age` for the trainer."""
    return {**point, **({"age": str(age)} if age is not None else {})}


def where(point: Mapping[str, str], age: int | None, start: int, end: int, sep: str = ", ") -> str:
    """A job's place in the sweep: `age 60<sep>slice 0-10000` for the trainer, the point alone for an own job."""
    label = point_label(point, age)
    return f"{label}{sep}slice {start}-{end}" if age is not None else label


def jobs_unit(summary: Summary, times: str = "x") -> str:
    """What one job is in this run: `age x slice` (v1), `point x age x slice`, or `one per point`."""
    if not summary.axes:
        return f"age {times} slice"
    return f"point {times} age {times} slice" if any(a.age is not None for a in summary.ages) else "one per point"


def short_label(point: Mapping[str, str], age: int | None) -> str:
    """A table cell's point: a v1 run's bare age (`60`), else the point in words."""
    return str(age) if not point and age is not None else point_label(point, age)
