"""The report's plots, drawn with matplotlib (imported only when a plot is drawn, so importing the
report stays cheap): metrics against age (one line per slice, broken at failed ages) — or, with
named axes, against the first numeric axis (one line per value of the others) — and each job's
loss curve."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agesweep.contracts import SliceOutcome, Summary
from agesweep.points import point_label

# The plotted series' colour. Nothing else on the page uses it, so a screenshot test can tell
# whether the plot image actually rendered.
PLOT_COLOR = "#1f77b4"
FAILED_COLOR = "#c62828"
LOSS_COLORMAP = "plasma"  # one colour per age; none of it near PLOT_COLOR
_SERIES_MARKERS = ("o", "s", "^", "D", "v", "P")
# One colour per slice (matplotlib's tab10 without its red, which marks failed ages); the first is PLOT_COLOR.
_SERIES_COLORS = (PLOT_COLOR, "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")

Point = tuple[float, float | None, float | None]  # (x: the age or the axis value, held-out c-index, final loss)
Series = dict[str, list[Point]]  # slice label (or, with named axes, the other axes' values) -> its points
_PANELS = (("Held-out c-index", 1), ("Final loss", 2))
TRAINER_METRICS = ("heldout_c_index", "final_loss")
_TITLES = {"heldout_c_index": "Held-out c-index", "final_loss": "Final loss"}


def slice_order(label: str) -> tuple[Any, ...]:
    """Slice labels in index order (0-500, 500-1000, 1000-1500), not text order."""
    numbers = [int(n) for n in re.findall(r"\d+", label)]
    return (0, *numbers) if numbers else (1, label)


@dataclass(frozen=True)
class XAxis:
    """What the metrics are plotted against: `age`, a numeric axis, or an axis's values in order."""

    name: str
    categories: dict[str, int] = field(default_factory=dict)  # a non-numeric axis: value -> position

    def of(self, s: SliceOutcome) -> float | None:
        if self.name == "age":
            return None if s.age is None else float(s.age)
        value = s.point.get(self.name)
        if value is None:
            return None
        return float(self.categories[value]) if self.categories else float(value)

    @property
    def title(self) -> str:
        return "Age" if self.name == "age" else self.name


def _numeric(values: Sequence[str]) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except ValueError:
        return False


def x_axis(summary: Summary) -> XAxis:
    """The first named axis whose every value is a number; else age (the trainer's); else the
    first axis, its values in order of appearance."""
    for name in summary.axes:
        if _numeric([a.point[name] for a in summary.ages if name in a.point]):
            return XAxis(name)
    if not summary.axes or any(a.age is not None for a in summary.ages):
        return XAxis("age")
    first = summary.axes[0]
    return XAxis(first, {v: n for n, v in enumerate(dict.fromkeys(a.point.get(first, "") for a in summary.ages))})


def series_label(s: SliceOutcome, x: XAxis, sliced: bool) -> str:
    """A v1 run's series is its slice; with named axes, the values of every axis but x (the slice too when several)."""
    if not s.point:
        return s.slice_label
    rest = {k: v for k, v in s.point.items() if k != x.name}
    label = point_label(rest, s.age if x.name != "age" else None)
    return ", ".join(p for p in (label, f"slice {s.slice_label}" if sliced else "") if p) or "all"


def _with_gaps(points: Sequence[tuple[float, float]], ages: Sequence[float]) -> tuple[list[float], list[float]]:
    """Values at every age of the run, NaN where a slice has none (failed, missing): the line breaks there."""
    by_age = dict(points)
    return list(ages), [by_age.get(age, math.nan) for age in ages]


def plotted_metrics(summary: Summary) -> tuple[str, ...]:
    """The two metrics plotted: the trainer's c-index and final loss; an own job's first two numeric
    metrics (those two first, if it wrote them)."""
    if not summary.axes or any(a.age is not None for a in summary.ages):
        return TRAINER_METRICS
    names: dict[str, None] = {}
    for s in summary.slices():
        written = s.metrics.model_dump(exclude_unset=True) if s.metrics else {}
        names.update({k: None for k, v in written.items() if isinstance(v, int | float) and not isinstance(v, bool)})
    ordered = [n for n in TRAINER_METRICS if n in names] + [n for n in names if n not in TRAINER_METRICS]
    return (*ordered, *TRAINER_METRICS)[:2] if len(ordered) < 2 else tuple(ordered[:2])


def _value(s: SliceOutcome, name: str) -> float | None:
    value = s.metrics.model_dump(exclude_unset=True).get(name) if s.metrics else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def plot_series(summary: Summary, x: XAxis | None = None, metrics: Sequence[str] = TRAINER_METRICS) -> Series:
    """The succeeded slices' metrics (two of them: `metrics`), one series per slice label (with
    named axes: per value of the other axes)."""
    x = x or x_axis(summary)
    sliced = len({s.slice_label for s in summary.slices()}) > 1
    series: Series = {}
    for s in summary.slices():
        at = x.of(s)
        if at is not None and s.succeeded and s.metrics and s.metrics.model_fields_set:  # a job that wrote some metrics
            series.setdefault(series_label(s, x, sliced), []).append((at, _value(s, metrics[0]), _value(s, metrics[1])))
    return series


def per_age_values(series: Series, column: int) -> dict[float, list[float]]:
    """Every slice's value of one column, per age (per x; values a job did not write are left out)."""
    per_age: dict[float, list[float]] = {}
    for points in series.values():
        for point in points:
            value = point[column]
            if value is not None:
                per_age.setdefault(point[0], []).append(float(value))
    return per_age


def _plot_band(ax: Any, series: Series, column: int, run_ages: Sequence[float], noun: str = "slices") -> bool:
    """Many slices: the mean per age with the slices' range as a band keeps the plot readable."""
    per_age = per_age_values(series, column)
    if not per_age:
        return False
    ages = sorted(set(run_ages) | set(per_age))
    nan = math.nan
    means = [sum(per_age[a]) / len(per_age[a]) if a in per_age else nan for a in ages]
    ax.fill_between(ages, [min(per_age[a]) if a in per_age else nan for a in ages],
                    [max(per_age[a]) if a in per_age else nan for a in ages], color=PLOT_COLOR, alpha=0.25, linewidth=0)
    ax.plot(ages, means, color=PLOT_COLOR, marker="o", markersize=4, linewidth=2, label=f"mean of {len(series)} {noun}")
    return True


def _plot_slices(ax: Any, series: Series, column: int, run_ages: Sequence[float], legend: str = "slice {}") -> bool:
    """Few slices: one line per slice, in index order, each its own colour and marker."""
    plotted = False
    for n, label in enumerate(sorted(series, key=slice_order)):
        shown = sorted((p[0], float(v)) for p in series[label] if (v := p[column]) is not None)
        if not shown:
            continue
        ages, values = _with_gaps(shown, sorted(set(run_ages) | {age for age, _ in shown}))
        ax.plot(ages, values, color=_SERIES_COLORS[n % len(_SERIES_COLORS)],
                marker=_SERIES_MARKERS[n % len(_SERIES_MARKERS)], markersize=5, linewidth=2, label=legend.format(label))
        plotted = True
    return plotted


def _draw_panel(
    ax: Any, title: str, column: int, series: Series, failed_ages: Sequence[float], run_ages: Sequence[float],
    x_name: str = "age", v1: bool = True,
) -> None:
    """One metric's panel; `v1`: the series are slices (else the values of the other axes)."""
    many = len(series) > len(_SERIES_MARKERS)
    if many:
        plotted = _plot_band(ax, series, column, run_ages, "slices" if v1 else "lines")
    else:
        plotted = _plot_slices(ax, series, column, run_ages, "slice {}" if v1 else "{}")
    for age in failed_ages:
        ax.axvline(age, color=FAILED_COLOR, linestyle=":", linewidth=1.2)
    if failed_ages:
        ax.plot([], [], color=FAILED_COLOR, linestyle=":", label=f"failed {x_name}")
    if not plotted:
        ax.text(0.5, 0.5, "no metrics JSON found for any succeeded job", ha="center", va="center",
                transform=ax.transAxes, color="#777")
    ax.set_ylabel(title)
    ax.grid(True, color="#e5e5e5")
    if plotted or failed_ages:
        ax.legend(loc="best", fontsize=8)


def _positions(summary: Summary, x: XAxis) -> tuple[list[float], list[float]]:
    """(every x of the run, the x of every failed job), each sorted and once."""
    slices = summary.slices()
    run = sorted({v for s in slices if (v := x.of(s)) is not None})
    failed = sorted({v for s in slices if not s.succeeded and (v := x.of(s)) is not None})
    return run, failed


def plot_png(summary: Summary) -> bytes:
    """Held-out c-index and final loss against age, or the first numeric axis (one series per
    slice, or per value of the other axes), failed ages (points) marked."""
    import matplotlib  # deferred: importing the report module stays cheap

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    x = x_axis(summary)
    metrics = plotted_metrics(summary)
    series = plot_series(summary, x, metrics)
    run_x, failed_x = _positions(summary, x)
    fig, axes = plt.subplots(2, 1, figsize=(9, 6.4), dpi=100, sharex=True)
    panels = [(_TITLES.get(name, name), column) for name, (_, column) in zip(metrics, _PANELS, strict=True)]
    for ax, (title, column) in zip(axes, panels, strict=True):
        _draw_panel(ax, title, column, series, failed_x, run_x, x.name, v1=not summary.axes)
    if x.categories:
        axes[-1].set_xticks(list(x.categories.values()), list(x.categories), rotation=30, ha="right", fontsize=7)
    elif x.name == "age":
        axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel(x.title)
    axes[0].set_title(f"{summary.run_id}: metrics against {x.name}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def loss_curves(summary: Summary) -> dict[str, tuple[list[tuple[int, float]], bool]]:
    """Every slice's loss history that has points, labelled 'age 55' (or 'age 55 0-2500' with
    several slices; with named axes, the point's values first), with whether the slice is suspect."""
    sliced = len({s.slice_label for s in summary.slices()}) > 1
    curves = {}
    for s in summary.slices():
        if s.metrics and s.metrics.loss_history:
            label = point_label(s.point, s.age) + (f" {s.slice_label}" if sliced else "")
            curves[label] = ([(int(e), math.nan if v is None else float(v)) for e, v in s.metrics.loss_history], s.suspect)
    return curves


def loss_png(summary: Summary) -> bytes | None:
    """The loss curve of every job (one line each, coloured in order; suspect ones dashed)."""
    curves = loss_curves(summary)
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = plt.get_cmap(LOSS_COLORMAP)
    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    for n, (label, (points, suspect)) in enumerate(sorted(curves.items())):
        ax.plot([p[0] for p in points], [p[1] for p in points], color=colours(0.85 * n / max(len(curves) - 1, 1)),
                linewidth=1.4, linestyle="--" if suspect else "-", label=label + (" (suspect)" if suspect else ""))
    values = [v for points, _ in curves.values() for _, v in points if math.isfinite(v)]
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Loss")
    ax.grid(True, color="#e5e5e5")
    if len(curves) <= 12:
        ax.legend(loc="best", fontsize=7, ncol=2)
    ax.set_title(f"{summary.run_id}: loss per {'point' if summary.axes else 'age'}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
