"""Named sweep axes and the points they make: each axis a list, a numeric range or date windows,
combined as a cartesian product (default) or zipped. Pure: no AWS, no manifest.

A point is one value per axis. A value has a label (job names, tags, output folders, the
summary) and the ``Ref::`` parameters it supplies: ``{name: label}``, or for date windows
``{name_start, name_end}`` (ISO dates, both days included).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

MAX_POINTS = 10_000  # points (Map iterations) per run: the Distributed Map path, see agesweep.plan
MAX_AXES = 8
MAX_AXIS_VALUES = 10_000
MAX_LABEL_CHARS = 100
AXIS_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9._=+@-]+")

Combine = Literal["product", "zip"]
T = TypeVar("T")


def _problem(text: str) -> PydanticCustomError:
    return PydanticCustomError("agesweep", text.replace("{", "{{").replace("}", "}}"))


class AxisValue(NamedTuple):
    """One value of one axis: its label and the Ref:: parameters it supplies."""

    label: str
    parameters: tuple[tuple[str, str], ...]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)


def number_label(value: float | int) -> str:
    """A number as a parameter: integers plainly, floats in their shortest exact form (0.1, not 0.1000…01)."""
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(round(float(value), 12))


class NumberRange(_Strict):
    """Every number from `from` to `to` (both included) in steps of `step`."""

    from_: int | float = Field(alias="from", description="First value (included).")
    to: int | float = Field(description="Last value (included when a whole number of steps away).")
    step: int | float = Field(1, gt=0, description="Distance between values (default 1).")

    @model_validator(mode="after")
    def _ordered(self) -> NumberRange:
        if self.from_ > self.to:
            raise _problem(f"from {self.from_} is above to {self.to} (from ≤ to)")
        count = self.count()
        if count > MAX_AXIS_VALUES:
            raise _problem(f"{count:,} values is too many (at most {MAX_AXIS_VALUES:,} per axis)")
        return self

    def count(self) -> int:
        return math.floor((self.to - self.from_) / self.step + 1e-9) + 1

    def values(self) -> list[int | float]:
        if all(isinstance(v, int) for v in (self.from_, self.to, self.step)):
            return list(range(int(self.from_), int(self.to) + 1, int(self.step)))
        return [round(self.from_ + i * self.step, 12) for i in range(self.count())]


class DateWindows(_Strict):
    """`start` to `end` (both included) cut into windows of `days` days; the last may be shorter."""

    start: Annotated[date, Field(strict=False)] = Field(description="First day (YYYY-MM-DD).")
    end: Annotated[date, Field(strict=False)] = Field(description="Last day (YYYY-MM-DD, included).")
    days: int = Field(30, ge=1, le=36_600, description="Days per window (default 30, as --batch-size-days).")

    @model_validator(mode="after")
    def _ordered(self) -> DateWindows:
        if self.start > self.end:
            raise _problem(f"start {self.start} is after end {self.end} (start ≤ end)")
        count = self.count()
        if count > MAX_AXIS_VALUES:
            raise _problem(f"{count:,} windows is too many (at most {MAX_AXIS_VALUES:,} per axis)")
        return self

    def count(self) -> int:
        return (self.end - self.start).days // self.days + 1

    def windows(self) -> list[tuple[date, date]]:
        step = timedelta(days=self.days)
        last = timedelta(days=self.days - 1)
        out, first = [], self.start
        while first <= self.end:
            out.append((first, min(first + last, self.end)))
            first += step
        return out


class Window(_Strict):
    """One date window, both days included (a retry manifest lists the failed ones)."""

    start: Annotated[date, Field(strict=False)] = Field(description="First day (YYYY-MM-DD).")
    end: Annotated[date, Field(strict=False)] = Field(description="Last day (YYYY-MM-DD, included).")

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start > self.end:
            raise _problem(f"start {self.start} is after end {self.end} (start ≤ end)")
        return self


Scalar = Annotated[str, Field(min_length=1, max_length=256)] | int | float
ListValue = Scalar | Window


def _axis_kind(value: Any) -> str | None:
    if isinstance(value, list):
        return "axis_list"
    if isinstance(value, dict | DateWindows | NumberRange):
        if isinstance(value, DateWindows) or (isinstance(value, dict) and ("start" in value or "days" in value)):
            return "axis_windows"
        return "axis_range"
    return None


AxisList = Annotated[list[ListValue], Field(min_length=1, max_length=MAX_AXIS_VALUES)]
Axis = Annotated[
    Annotated[AxisList, Tag("axis_list")] | Annotated[NumberRange, Tag("axis_range")] | Annotated[DateWindows, Tag("axis_windows")],
    Discriminator(
        _axis_kind,
        custom_error_type="axis_shape",
        custom_error_message=(
            "not a list, a range or date windows (a list [a, b], {from, to[, step]} or {start, end[, days]})"
        ),
    ),
]
# The discriminator tags (they appear in error locations) and the model behind each.
AXIS_MODELS: dict[str, type[BaseModel] | None] = {"axis_list": Window, "axis_range": NumberRange, "axis_windows": DateWindows}


def _window_value(name: str, a: date, b: date) -> AxisValue:
    return AxisValue(f"{a.isoformat()}_{b.isoformat()}", ((f"{name}_start", a.isoformat()), (f"{name}_end", b.isoformat())))


def axis_values(name: str, axis: list[Any] | NumberRange | DateWindows) -> list[AxisValue]:
    """The values of one axis, in order."""
    if isinstance(axis, DateWindows):
        return [_window_value(name, a, b) for a, b in axis.windows()]
    raw = axis.values() if isinstance(axis, NumberRange) else axis
    out = []
    for value in raw:
        if isinstance(value, Window):
            out.append(_window_value(name, value.start, value.end))
            continue
        label = value if isinstance(value, str) else number_label(value)
        out.append(AxisValue(label, ((name, label),)))
    return out


def supplied_names(name: str, axis: list[Any] | NumberRange | DateWindows) -> list[str]:
    """The Ref:: parameter names an axis supplies (a list of windows is date windows too)."""
    windows = isinstance(axis, DateWindows) or (isinstance(axis, list) and any(isinstance(v, Window) for v in axis))
    return [f"{name}_start", f"{name}_end"] if windows else [name]


def axis_length(axis: list[Any] | NumberRange | DateWindows) -> int:
    return len(axis) if isinstance(axis, list) else axis.count()


def point_count(lengths: Sequence[int], combine: Combine) -> int:
    if not lengths:
        return 1
    return math.prod(lengths) if combine == "product" else lengths[0]


def points(columns: Sequence[Sequence[T]], combine: Combine) -> list[tuple[T, ...]]:
    """The points of axes already expanded (product: the last axis varies fastest; zip: by position)."""
    if combine == "zip":
        return list(zip(*columns, strict=True))
    return list(itertools.product(*columns))


def path_label(label: str) -> str:
    """A label made safe for a folder name, a key prefix and a job name (≤100 characters)."""
    clean = _LABEL_UNSAFE.sub("-", label).strip("-.") or "x"
    return clean[:MAX_LABEL_CHARS]
