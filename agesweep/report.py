"""report.html: one self-contained page per run that opens offline (inline CSS, plots as data: PNGs).

It answers, top to bottom: where did this run come from and what did it cost (lineage, estimate,
incurred), how did the model do across ages (held-out c-index and final loss against age), what
did the jobs ask for against what they used (and what the next run should ask), how did each
age's loss fall (loss curves; suspect training flagged), what ran where (status grid ages x
slices), and what failed and why (reason, exit code, log link).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from agesweep.contracts import JobMetrics, ResourceUse, SliceOutcome, Summary
from agesweep.points import jobs_unit, point_label, short_label, where
from agesweep.report_plots import loss_png, plot_png, x_axis
from agesweep.settings import local_mode
from agesweep.text import (
    asked_used_text,
    format_ages,
    format_cost,
    format_duration,
    format_memory,
    format_metric,
    incurred_text,
)

# A pullable image: [registry/]repository with a non-empty tag or a sha256 digest.
_IMAGE_REF = re.compile(r"^[a-z0-9][a-z0-9._/:-]*?[a-z0-9](?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$")
LOCAL_IMAGE = "local process (no image)"

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
.suspect{color:#b71c1c;font-weight:600}
footer{margin-top:24px;color:#777;font-size:0.8em}
"""


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _use_row(use: ResourceUse) -> str:
    cells = [
        str(use.age) if use.age is not None else "all",
        "" if use.vcpus_requested is None else f"{use.vcpus_requested:g}",
        format_memory(use.memory_mib_requested) if use.memory_mib_requested is not None else "",
        format_memory(use.peak_memory_mib) if use.peak_memory_mib is not None else "",
        "" if use.cpu_seconds is None else f"{use.cpu_seconds:,.0f}" + ("" if use.cpu_seconds_measured else " (bound)"),
        format_duration(use.wall_s) if use.wall_s is not None else "",
        "" if use.busy_vcpus is None else f"{use.busy_vcpus:.2g}",
    ]
    return "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def resources_html(summary: Summary) -> str:
    """Asked against used (overall, then per age) and the next run's recommendation."""
    resources = summary.resources
    if resources is None or not resources.overall.jobs:
        return "<p>No job ran, so nothing was measured.</p>"
    advice = resources.recommendation
    if advice is None:
        next_run = "<p>No recommendation: no job reported its peak memory.</p>"
    else:
        next_run = (f'<p id="recommendation">Next run: <span class="code">job: {{vcpus: {advice.vcpus}, '
                    f"memory_mib: {advice.memory_mib}}}</span> ({format_memory(advice.memory_mib)}) &mdash; "
                    f"{escape(advice.reason)}.</p>")
    rows = "".join(_use_row(u) for u in [resources.overall, *resources.ages])
    return (
        f'<p id="resources-summary">{escape(_sentence(asked_used_text(resources.overall)))}.</p>{next_run}'
        "<table><thead><tr><th>age</th><th>asked vCPU</th><th>asked memory</th><th>peak memory</th>"
        "<th>CPU seconds</th><th>wall</th><th>busy vCPUs</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def training_html(summary: Summary) -> str:
    """The loss curves, and every suspect slice with its reasons."""
    png = loss_png(summary)
    parts = []
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure><img id="loss-plot" alt="Loss per epoch, one line per age" src="data:image/png;base64,{data}"></figure>')
    else:
        parts.append("<p>No job wrote a loss history.</p>")
    suspects = [s for s in summary.slices() if s.suspect]
    if suspects:
        items = "".join(
            f'<li><span class="suspect">{escape(where(s.point, s.age, s.start_index, s.end_index, sep=" "))}</span>: '
            f"{escape('; '.join(s.suspect_reasons))}</li>"
            for s in suspects
        )
        which = f"ages {escape(format_ages(summary.suspect_ages))}" if not summary.axes else f"{len(suspects)} jobs"
        parts.append(f'<p class="suspect">Suspect training: {which}</p><ul id="suspects">{items}</ul>')
    else:
        parts.append("<p>No job's training looks suspect.</p>")
    return "".join(parts)


def _listed(value: str | list[str] | None) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value or "unknown")


def image_text(image: str | list[str] | None) -> str:
    """The image the jobs ran; local mode runs no image, and a value that is no pullable image
    (an unresolved template output, say) is named as such rather than shown as if it were one."""
    if local_mode():
        return LOCAL_IMAGE
    images = image if isinstance(image, list) else [image] if image else []
    if not images:
        return "unknown"
    return ", ".join(i if _IMAGE_REF.match(i) else f"{i} (not an image URI)" for i in images)


def _cost_rows(summary: Summary) -> list[tuple[str, str, bool]]:
    cost = summary.cost_estimate
    label = " (if run on AWS)" if cost.if_run_on_aws else ""
    rows = [(f"Cost estimate{label}",
             format_cost(cost.cost_estimate_usd) + (f" ({cost.estimate_note})" if cost.estimate_note else ""), False)]
    if cost.incurred is not None:
        rows.append((f"Cost incurred{label}", f"{incurred_text(cost.incurred)}. {cost.incurred.note}.", False))
    return rows


def _lineage_rows(summary: Summary) -> list[tuple[str, str, bool]]:
    lin = summary.lineage
    manifest = lin.manifest
    rows = [
        ("Run id", summary.run_id, True),
        ("Run name", summary.run_name, False),
        *([("Retry of run", summary.lineage.retry_of, True)] if summary.lineage.retry_of else []),
        ("Manifest", f"s3://{manifest.bucket}/{manifest.key}"
         + (f"  (version {manifest.version_id})" if manifest.version_id else ""), True),
        ("Manifest sha256", manifest.sha256 or "unknown", True),
        ("Image", image_text(lin.image), True),
        ("Job definition", _listed(lin.job_definition), True),
        ("Job queue", lin.job_queue or "", True),
        ("Input", lin.input or "", True),
        ("Output", lin.output or "", True),
        ("Parameters", ", ".join(f"{k}={v}" for k, v in sorted(lin.parameters.items())), True),
        ("Started", summary.started_at or "unknown", False),
        ("Finished", summary.finished_at or "unknown", False),
        ("Duration", format_duration(summary.duration_s), False),
        *_cost_rows(summary),
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
        text = "OK" + (f" &middot; c {format_metric(c_index)}" if c_index is not None else "")
        text += ' <span class="suspect" title="suspect training">&#9888; suspect</span>' if s.suspect else ""
    else:
        text = escape(s.status) + (f" &middot; exit {s.exit_code}" if s.exit_code is not None else "")
    title = escape(s.status_reason or s.status, quote=True)
    return f'<td class="{_cell_class(s.status)}" title="{title}">{text}</td>'


def _first_column(summary: Summary) -> str:
    return "point" if summary.axes else "age"


def status_grid_html(summary: Summary) -> str:
    """One row per item (age, or point), one column per slice (an own job's: its one status)."""
    labels: list[str] = []
    for s in summary.slices():
        if s.slice_label not in labels:
            labels.append(s.slice_label)
    own = bool(summary.axes) and all(a.age is None for a in summary.ages)
    head = "<th>status</th>" if own else "".join(f"<th>slice {escape(label)}</th>" for label in labels)
    rows = []
    for age in summary.ages:
        by_label = {s.slice_label: s for s in age.slices}
        cells = "".join(_grid_cell(by_label.get(label)) for label in labels)
        rows.append(f"<tr><th>{escape(short_label(age.point, age.age) or age.job_name)}</th>{cells}</tr>")
    return (f'<table class="grid"><thead><tr><th>{_first_column(summary)}</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _tail_html(lines: list[str]) -> str:
    return f"<pre class=\"tail\">{escape(chr(10).join(lines))}</pre>" if lines else ""


def failures_html(summary: Summary) -> str:
    if not summary.failures:
        return "<p>Nothing failed.</p>"
    rows = []
    for f in summary.failures:
        link = f'<a href="{escape(f.log_url, quote=True)}">log</a>' if f.log_url else "no log stream"
        rows.append(
            f"<tr><td>{escape(short_label(f.point, f.age))}</td>"
            f"<td>{'' if f.age is None else f'{f.start_index}-{f.end_index}'}</td><td>{escape(f.status)}</td>"
            f"<td>{escape(f.reason)}{_tail_html(f.log_tail)}</td><td>{'' if f.exit_code is None else f.exit_code}</td>"
            f"<td>{f.attempts}</td><td>{escape(f.capacity or '')}</td><td>{f.reclaims}</td><td>{link}</td></tr>"
        )
    return (
        f"<table><thead><tr><th>{_first_column(summary)}</th><th>slice</th><th>status</th>"
        "<th>reason (last lines of the log)</th><th>exit</th>"
        f"<th>attempts</th><th>capacity</th><th>reclaims</th><th>log</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def capacity_html(summary: Summary) -> str:
    """Per item: the capacity that finished it and the host reclaims it took."""
    touched = [a for a in summary.ages if a.reclaims or a.capacity == "on-demand"]
    if not touched:
        return "<p>No spot reclaims; every item ran on the spot-first queue.</p>"
    rows = "".join(
        f"<tr><td>{escape(short_label(a.point, a.age) or a.job_name)}</td><td>{escape(a.status)}</td>"
        f"<td>{escape(a.capacity)}</td><td>{a.reclaims}</td></tr>"
        for a in touched
    )
    head = f"<th>{_first_column(summary)}</th><th>status</th><th>finished on</th><th>reclaims</th>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def metrics_table_html(summary: Summary) -> str:
    rows = []
    for s in summary.slices():
        m = s.metrics or JobMetrics()
        rows.append(
            f"<tr><td>{escape(short_label(s.point, s.age))}</td><td>{s.slice_label if s.age is not None else ''}</td>"
            f"<td class=\"{_cell_class(s.status)}\">{escape(s.status)}</td>"
            f"<td>{format_metric(m.heldout_c_index_initial)}</td><td>{format_metric(m.heldout_c_index)}</td>"
            f"<td>{format_metric(m.final_loss)}</td>"
            f"<td>{'suspect' if s.suspect else ''}</td>"
            f"<td>{_fmt(m.n_patients)}</td><td>{_fmt(m.epochs)}</td>"
            f"<td>{format_memory(float(m.peak_rss_mb)) if m.peak_rss_mb is not None else ''}</td>"
            f"<td>{_fmt(m.cpu_seconds)}</td>"
            f"<td>{format_duration(s.duration_s) if s.duration_s is not None else ''}</td><td>{s.attempts}</td>"
            f"<td class=\"code\">{escape(s.job_id or '')}</td></tr>"
        )
    return (
        f"<table><thead><tr><th>{_first_column(summary)}</th><th>slice</th><th>status</th><th>c-index initial</th><th>c-index</th>"
        "<th>final loss</th><th>training</th><th>patients</th><th>epochs</th><th>peak memory</th><th>CPU s</th>"
        "<th>duration</th><th>attempts</th><th>job id</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _scope_html(summary: Summary, ages: Sequence[int]) -> str:
    """`ages 40-79`; with named axes, each axis's number of values (and the ages, if any)."""
    if not summary.axes:
        return f"ages {escape(format_ages(ages))}"
    counts = ", ".join(f"{escape(n)} ({len({a.point.get(n) for a in summary.ages})} values)" for n in summary.axes)
    return f"axes {counts}" + (f"; ages {escape(format_ages(ages))}" if ages else "")


def _failed_points_html(summary: Summary) -> str:
    """The failed points in words (a run with named axes)."""
    if not summary.axes or not summary.failed_points:
        return ""
    items = "".join(
        f"<li>{escape(point_label({k: v for k, v in p.items() if k != 'age'}, int(p['age']) if 'age' in p else None))}</li>"
        for p in summary.failed_points
    )
    return f'<p>Failed points ({len(summary.failed_points)}):</p><ul id="failed-points">{items}</ul>'


def metrics_html(summary: Summary, against: str) -> str:
    """The metrics plot; for a run with axes whose jobs wrote no metrics, how a job can."""
    if summary.axes and not any(s.metrics for s in summary.slices()):
        return ("<p id=\"no-metrics\">No job wrote metrics JSON. A job may write JSON files under its "
                "<span class=\"code\">Ref::results_uri</span> prefix, in <span class=\"code\">metrics/</span>: "
                "their numbers are plotted here against the first numeric axis.</p>")
    png = base64.b64encode(plot_png(summary)).decode("ascii")
    return (f'<figure><img id="metrics-plot" alt="Held-out c-index and final loss against {escape(against, quote=True)}"\n'
            f' src="data:image/png;base64,{png}"></figure>')


def render_report(summary: Summary, uris: Mapping[str, str] | None = None) -> str:
    """The whole page as one string; nothing in it needs the network."""
    uris = uris or {}
    if summary.failed == 0:
        verdict, css = "all succeeded", "v-ok"
    elif summary.within_tolerance:
        verdict, css = "some failed, within tolerance", "v-warn"
    else:
        verdict, css = "failures above tolerance", "v-bad"
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
    ages = sorted({a.age for a in summary.ages if a.age is not None})
    against = x_axis(summary).name
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agesweep {escape(summary.run_id)}</title>
<style>{_CSS}</style></head>
<body><main>
<h1>agesweep run <span class="code">{escape(summary.run_id)}</span></h1>
<p><span class="verdict {css}">{verdict}</span>
{summary.succeeded} succeeded / {summary.failed} failed of {summary.total} jobs ({jobs_unit(summary, "&times;")});
{_scope_html(summary, ages)}; {summary.failed_percent:.3g}% failed, {summary.tolerated_failure_percent:g}% tolerated.</p>
{_failed_points_html(summary)}
<h2>Run</h2>
<table class="lineage"><tbody>{lineage_rows}</tbody></table>
<h2>Metrics against {escape(against)}</h2>
{metrics_html(summary, against)}
<h2>Resources: asked and used</h2>
{resources_html(summary)}
<h2>Training</h2>
{training_html(summary)}
<h2>Status ({_first_column(summary)}s &times; slices)</h2>
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


__all__: Sequence[str] = ("render_report", "report_for", "status_grid_html")
