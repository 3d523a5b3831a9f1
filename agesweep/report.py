"""report.html: one self-contained page per run that opens offline (inline CSS, plots as data: PNGs).

It answers, top to bottom: where did this run come from (lineage), how did the model do across
ages (held-out c-index and final loss against age), what ran where (status grid ages x slices),
and what failed and why (reason, exit code, log link).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from agesweep.contracts import JobMetrics, SliceOutcome, Summary
from agesweep.text import format_ages, format_cost, format_duration

# The plotted series' colour. Nothing else on the page uses it, so a screenshot test can tell
# whether the plot image actually rendered.
PLOT_COLOR = "#1f77b4"
FAILED_COLOR = "#c62828"
_SERIES_MARKERS = ("o", "s", "^", "D", "v", "P")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:16px;color:#222;background:#fff}
main{max-width:980px;margin:0 auto}
h1{font-size:1.4em;margin:0 0 4px}h2{font-size:1.15em;margin:24px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.verdict{display:inline-block;padding:2px 8px;border-radius:4px;font-weight:600}
.v-ok{background:#e3f4e6;color:#1b5e20}.v-warn{background:#fff4e0;color:#8a5300}.v-bad{background:#fde7e7;color:#b71c1c}
table{border-collapse:collapse;font-size:0.9em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}
table.lineage td:first-child{font-weight:600;white-space:nowrap}
td.code,span.code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:0.95em;word-break:break-all}
td.ok{background:#e3f4e6}td.fail{background:#fde7e7}td.other{background:#fff4e0}
.grid td{text-align:center;white-space:nowrap}
figure{margin:0}figure img{max-width:100%;height:auto;border:1px solid #eee}
.notes li{color:#8a5300}
footer{margin-top:24px;color:#777;font-size:0.8em}
"""


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


Point = tuple[int, float | None, float | None]  # (age, held-out c-index, final loss)
Series = dict[str, list[Point]]  # slice label -> its points
_PANELS = (("Held-out c-index", 1), ("Final loss", 2))


def plot_series(summary: Summary) -> Series:
    """The succeeded slices' metrics, one series per slice label."""
    series: Series = {}
    for s in summary.slices():
        if s.succeeded and s.metrics and s.metrics.model_fields_set:  # a job that wrote some metrics
            series.setdefault(s.slice_label, []).append((s.age, s.metrics.heldout_c_index, s.metrics.final_loss))
    return series


def per_age_values(series: Series, column: int) -> dict[int, list[float]]:
    """Every slice's value of one column, per age (values a job did not write are left out)."""
    per_age: dict[int, list[float]] = {}
    for points in series.values():
        for point in points:
            value = point[column]
            if value is not None:
                per_age.setdefault(point[0], []).append(float(value))
    return per_age


def _plot_band(ax: Any, series: Series, column: int) -> bool:
    """Many slices: the mean per age with the slices' range as a band keeps the plot readable."""
    per_age = per_age_values(series, column)
    ages = sorted(per_age)
    if not ages:
        return False
    means = [sum(per_age[a]) / len(per_age[a]) for a in ages]
    ax.fill_between(ages, [min(per_age[a]) for a in ages], [max(per_age[a]) for a in ages],
                    color=PLOT_COLOR, alpha=0.25, linewidth=0)
    ax.plot(ages, means, color=PLOT_COLOR, marker="o", markersize=4, linewidth=2, label=f"mean of {len(series)} slices")
    return True


def _plot_slices(ax: Any, series: Series, column: int) -> bool:
    """Few slices: one line per slice, told apart by marker."""
    plotted = False
    for n, (label, points) in enumerate(sorted(series.items())):
        shown = sorted((p[0], float(v)) for p in points if (v := p[column]) is not None)
        if not shown:
            continue
        ax.plot([p[0] for p in shown], [p[1] for p in shown], color=PLOT_COLOR,
                marker=_SERIES_MARKERS[n % len(_SERIES_MARKERS)], markersize=5, linewidth=2, label=f"slice {label}")
        plotted = True
    return plotted


def _draw_panel(ax: Any, title: str, column: int, series: Series, failed_ages: list[int]) -> None:
    many = len(series) > len(_SERIES_MARKERS)
    plotted = _plot_band(ax, series, column) if many else _plot_slices(ax, series, column)
    for age in failed_ages:
        ax.axvline(age, color=FAILED_COLOR, linestyle=":", linewidth=1.2)
    if failed_ages:
        ax.plot([], [], color=FAILED_COLOR, linestyle=":", label="failed age")
    if not plotted:
        ax.text(0.5, 0.5, "no metrics JSON found for any succeeded job", ha="center", va="center",
                transform=ax.transAxes, color="#777")
    ax.set_ylabel(title)
    ax.grid(True, color="#e5e5e5")
    if plotted or failed_ages:
        ax.legend(loc="best", fontsize=8)


def plot_png(summary: Summary) -> bytes:
    """Held-out c-index and final loss against age (one series per slice), failed ages marked."""
    import matplotlib  # deferred: importing the report module stays cheap

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    series = plot_series(summary)
    fig, axes = plt.subplots(2, 1, figsize=(9, 6.4), dpi=100, sharex=True)
    for ax, (title, column) in zip(axes, _PANELS, strict=True):
        _draw_panel(ax, title, column, series, summary.failed_ages)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("Age")
    axes[0].set_title(f"{summary.run_id}: metrics against age")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _listed(value: str | list[str] | None) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value or "unknown")


def _cost_text(summary: Summary) -> str:
    cost = summary.cost_estimate
    return format_cost(cost.cost_estimate_usd) + (f" ({cost.estimate_note})" if cost.estimate_note else "")


def _lineage_rows(summary: Summary) -> list[tuple[str, str, bool]]:
    lin = summary.lineage
    manifest = lin.manifest
    rows = [
        ("Run id", summary.run_id, True),
        ("Run name", summary.run_name, False),
        ("Manifest", f"s3://{manifest.bucket}/{manifest.key}"
         + (f"  (version {manifest.version_id})" if manifest.version_id else ""), True),
        ("Manifest sha256", manifest.sha256 or "unknown", True),
        ("Image", _listed(lin.image), True),
        ("Job definition", _listed(lin.job_definition), True),
        ("Job queue", lin.job_queue or "", True),
        ("Input", lin.input or "", True),
        ("Output", lin.output or "", True),
        ("Parameters", ", ".join(f"{k}={v}" for k, v in sorted(lin.parameters.items())), True),
        ("Started", summary.started_at or "unknown", False),
        ("Finished", summary.finished_at or "unknown", False),
        ("Duration", format_duration(summary.duration_s), False),
        ("Cost estimate", _cost_text(summary), False),
    ]
    if lin.git_revision:
        rows.append(("Trainer revision", str(lin.git_revision), True))
    return rows


def _cell_class(status: str) -> str:
    if status == "SUCCEEDED":
        return "ok"
    if status in {"FAILED", "NOT_SUBMITTED", "MISSING"}:
        return "fail"
    return "other"


def _grid_cell(s: SliceOutcome | None) -> str:
    if s is None:
        return "<td></td>"
    if s.succeeded:
        c_index = s.metrics.heldout_c_index if s.metrics else None
        text = "OK" + (f" &middot; c {_fmt(c_index, 3)}" if c_index is not None else "")
    else:
        text = escape(s.status) + (f" &middot; exit {s.exit_code}" if s.exit_code is not None else "")
    title = escape(s.status_reason or s.status, quote=True)
    return f'<td class="{_cell_class(s.status)}" title="{title}">{text}</td>'


def status_grid_html(summary: Summary) -> str:
    labels: list[str] = []
    for s in summary.slices():
        if s.slice_label not in labels:
            labels.append(s.slice_label)
    head = "".join(f"<th>slice {escape(label)}</th>" for label in labels)
    rows = []
    for age in summary.ages:
        by_label = {s.slice_label: s for s in age.slices}
        cells = "".join(_grid_cell(by_label.get(label)) for label in labels)
        rows.append(f"<tr><th>{age.age}</th>{cells}</tr>")
    return f'<table class="grid"><thead><tr><th>age</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _tail_html(lines: list[str]) -> str:
    return f"<pre class=\"tail\">{escape(chr(10).join(lines))}</pre>" if lines else ""


def failures_html(summary: Summary) -> str:
    if not summary.failures:
        return "<p>Nothing failed.</p>"
    rows = []
    for f in summary.failures:
        link = f'<a href="{escape(f.log_url, quote=True)}">log</a>' if f.log_url else "no log stream"
        rows.append(
            f"<tr><td>{f.age}</td><td>{f.start_index}-{f.end_index}</td><td>{escape(f.status)}</td>"
            f"<td>{escape(f.reason)}{_tail_html(f.log_tail)}</td><td>{'' if f.exit_code is None else f.exit_code}</td>"
            f"<td>{f.attempts}</td><td>{escape(f.capacity or '')}</td><td>{f.reclaims}</td><td>{link}</td></tr>"
        )
    return (
        "<table><thead><tr><th>age</th><th>slice</th><th>status</th><th>reason (last lines of the log)</th><th>exit</th>"
        f"<th>attempts</th><th>capacity</th><th>reclaims</th><th>log</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def capacity_html(summary: Summary) -> str:
    """Per item: the capacity that finished it and the host reclaims it took."""
    touched = [a for a in summary.ages if a.reclaims or a.capacity == "on-demand"]
    if not touched:
        return "<p>No spot reclaims; every item ran on the spot-first queue.</p>"
    rows = "".join(
        f"<tr><td>{a.age}</td><td>{escape(a.status)}</td><td>{escape(a.capacity)}</td><td>{a.reclaims}</td></tr>"
        for a in touched
    )
    return f"<table><thead><tr><th>age</th><th>status</th><th>finished on</th><th>reclaims</th></tr></thead><tbody>{rows}</tbody></table>"


def metrics_table_html(summary: Summary) -> str:
    rows = []
    for s in summary.slices():
        m = s.metrics or JobMetrics()
        rows.append(
            f"<tr><td>{s.age}</td><td>{s.slice_label}</td><td class=\"{_cell_class(s.status)}\">{escape(s.status)}</td>"
            f"<td>{_fmt(m.heldout_c_index)}</td><td>{_fmt(m.final_loss)}</td>"
            f"<td>{_fmt(m.n_patients)}</td><td>{_fmt(m.epochs)}</td>"
            f"<td>{format_duration(s.duration_s) if s.duration_s is not None else ''}</td><td>{s.attempts}</td>"
            f"<td class=\"code\">{escape(s.job_id or '')}</td></tr>"
        )
    return (
        "<table><thead><tr><th>age</th><th>slice</th><th>status</th><th>c-index</th><th>final loss</th>"
        "<th>patients</th><th>epochs</th><th>duration</th><th>attempts</th><th>job id</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render_report(summary: Summary, uris: Mapping[str, str] | None = None) -> str:
    """The whole page as one string; nothing in it needs the network."""
    uris = uris or {}
    if summary.failed == 0:
        verdict, css = "all succeeded", "v-ok"
    elif summary.within_tolerance:
        verdict, css = "some failed, within tolerance", "v-warn"
    else:
        verdict, css = "failures above tolerance", "v-bad"
    png = base64.b64encode(plot_png(summary)).decode("ascii")
    code_attr = ' class="code"'
    lineage_rows = "".join(
        f"<tr><td>{escape(name)}</td><td{code_attr if code else ''}>{escape(value)}</td></tr>"
        for name, value, code in _lineage_rows(summary)
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in summary.notes)
    links = "".join(
        f"<li>{escape(label)}: <span class=\"code\">{escape(uris[key])}</span></li>"
        for key, label in (("summary_uri", "Summary"), ("retry_manifest_uri", "Retry manifest"))
        if uris.get(key)
    )
    ages = sorted({a.age for a in summary.ages})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agesweep {escape(summary.run_id)}</title>
<style>{_CSS}</style></head>
<body><main>
<h1>agesweep run <span class="code">{escape(summary.run_id)}</span></h1>
<p><span class="verdict {css}">{verdict}</span>
{summary.succeeded} succeeded / {summary.failed} failed of {summary.total} jobs (age &times; slice);
ages {escape(format_ages(ages))}; {summary.failed_percent:.3g}% failed, {summary.tolerated_failure_percent:g}% tolerated.</p>
<h2>Run</h2>
<table class="lineage"><tbody>{lineage_rows}</tbody></table>
<h2>Metrics against age</h2>
<figure><img id="metrics-plot" alt="Held-out c-index and final loss against age" src="data:image/png;base64,{png}"></figure>
<h2>Status (ages &times; slices)</h2>
{status_grid_html(summary)}
<h2>Failures</h2>
{failures_html(summary)}
<h2>Spot reclaims and escalations</h2>
{capacity_html(summary)}
<h2>All jobs</h2>
{metrics_table_html(summary)}
{f'<h2>Notes</h2><ul class="notes">{notes}</ul>' if notes else ''}
{f'<h2>Files</h2><ul>{links}</ul>' if links else ''}
<footer>Collated {escape(summary.collated_at)} by agesweep.</footer>
</main></body></html>
"""


def report_for(summary: Summary | Mapping[str, Any], uris: Mapping[str, str] | None = None) -> str:
    """Render from a Summary or from summary.json's dict (e.g. to re-render an old run)."""
    model = summary if isinstance(summary, Summary) else Summary.model_validate(summary)
    return render_report(model, uris)


__all__: Sequence[str] = ("PLOT_COLOR", "plot_png", "render_report", "report_for", "status_grid_html")
