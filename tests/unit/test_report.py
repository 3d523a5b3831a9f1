"""report.html content: lineage header, embedded plot, status grid, failures; nothing fetched from the network."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from test_collate import collate_dicts

from agesweep import report
from agesweep.collation import render
from agesweep.contracts import Summary

EVENTS = Path(__file__).resolve().parents[2] / "events"


def summary_with_failure(reason: str = "Essential container in task exited") -> Summary:
    event = json.loads((EVENTS / "collate_results.json").read_text())
    cause = json.loads(event["results"][1]["error"]["Cause"])
    cause["StatusReason"] = reason
    event["results"][1]["error"]["Cause"] = json.dumps(cause)
    metrics = {(a, 0, 10000): {"final_loss": 12.0 - a / 10, "heldout_c_index": 0.6 + a / 1000,
                               "loss_history": [[0, 20.0], [100, 14.0 - a / 10], [200, 12.0 - a / 10]]} for a in (54, 56)}
    return collate_dicts(event["plan"], event["results"], {}, {}, metrics, region="us-east-1")


def plot_bytes(html: str) -> bytes:
    match = re.search(r'<img id="metrics-plot"[^>]* src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert match, "the plot is not embedded as a data: PNG"
    return base64.b64decode(match.group(1))


def test_report_has_the_run_header_with_lineage() -> None:
    summary = summary_with_failure()
    html = report.render_report(summary, {"summary_uri": "s3://b/runs/r/summary.json"})
    for expected in (
        summary.run_id,
        "9b1f0c6e2d4a8f3b7c5e1d9a0b2c4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d",  # manifest sha256
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/agesweep-dev-trainer:1.4.0",  # image
        "job-definition/agesweep-dev-aladyn-model-job:3",  # job definition ARN:revision
        "2025-11-25T09:00:01Z", "2025-11-25T09:03:11Z", "3m 10s",  # started, finished, duration
        "up to $6.45 on spot ($18.43 on-demand) + $0.0004 Step Functions; at most 384 vCPU-hours",  # cost estimate
        "s3://b/runs/r/summary.json",
    ):
        assert expected in html, expected


def test_plot_is_a_real_png_and_the_page_needs_no_network() -> None:
    html = report.render_report(summary_with_failure())
    png = plot_bytes(html)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # Every loaded resource is inline: the only src is the data: PNG; links (href) are navigation only.
    assert re.findall(r'src="([a-z]+):', html) == ["data", "data"]  # the metrics plot and the loss curves
    for loader in ("<link", "<script", "url(", "@import", "<iframe"):
        assert loader not in html, loader


def test_status_grid_and_failure_table() -> None:
    html = report.render_report(summary_with_failure())
    grid = html.split('<table class="grid">', 1)[1].split("</table>", 1)[0]
    assert "<th>slice 0-10000</th>" in grid
    rows = re.findall(r"<tr><th>(\d+)</th>(.*?)</tr>", grid)
    assert [(age, 'class="fail"' in cells) for age, cells in rows] == [("54", False), ("55", True), ("56", False)]
    assert "OK &middot; c 0.654" in grid and "FAILED &middot; exit 1" in grid
    failures = html.split("<h2>Failures</h2>", 1)[1].split("</table>", 1)[0]
    assert "Essential container in task exited" in failures
    assert "log-events/agesweep-dev-aladyn-model-job$252Fdefault$252F0f5e3d1c7b9a4e2d8c6b0a1f3e5d7c9b" in failures


def test_reasons_are_escaped() -> None:
    html = report.render_report(summary_with_failure('<script>alert("x")</script>'))
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html


def test_report_re_renders_from_summary_json() -> None:
    summary = summary_with_failure()
    as_json: dict[str, Any] = json.loads(render.summary_json(summary))
    html = report.report_for(as_json)
    assert summary.run_id in html and "FAILED &middot; exit 1" in html


def test_report_without_metrics_still_renders_a_plot() -> None:
    event = json.loads((EVENTS / "collate_results.json").read_text())
    summary = collate_dicts(event["plan"], event["results"], {}, {}, {})
    assert plot_bytes(report.render_report(summary))[:4] == b"\x89PNG"
