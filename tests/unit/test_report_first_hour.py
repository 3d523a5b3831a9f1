"""report.html as a new user first sees it: an honest Image row, one number format, lines that
break at failed ages, slices in index order and colours, and local-mode log links that open."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from test_report import summary_with_failure

from agesweep import report, report_plots
from agesweep.links import job_log_url


class _Axes:
    """Records what a panel draws."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def plot(self, x: list[int], y: list[float], **style: Any) -> None:
        self.lines.append({"x": list(x), "y": list(y), **style})

    def fill_between(self, *_: Any, **__: Any) -> None:
        pass


def test_the_image_row_is_honest() -> None:
    ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/agesweep-dev-trainer:1.4.0"
    assert report.image_text(ecr) == ecr
    assert report.image_text("python:3.11-slim") == "python:3.11-slim"
    unresolved = "agesweep-local-ImageRepository-RepositoryUri:"
    assert report.image_text(unresolved) == f"{unresolved} (not an image URI)"
    assert report.image_text(None) == "unknown"


def test_local_mode_ran_no_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGESWEEP_LOCAL", "1")
    html = report.render_report(summary_with_failure())
    assert "<td>Image</td><td class=\"code\">local process (no image)</td>" in html


def test_c_index_and_loss_have_one_format_everywhere() -> None:
    html = report.render_report(summary_with_failure())
    grid = re.findall(r"c (\d+\.\d+)", html)
    cells = re.findall(r"<td>(\d+\.\d+)</td>", html)
    assert grid and cells
    assert all(len(value.split(".")[1]) == 3 for value in grid + cells), (grid, cells)
    assert "0.654" in grid and "0.654" in cells  # the same value reads the same in the grid and the table


def test_lines_break_at_failed_ages_and_slices_are_told_apart() -> None:
    series: report.Series = {
        "1000-1500": [(40, 0.61, 4.0), (42, 0.63, 3.0)],
        "0-500": [(40, 0.60, 5.0), (42, 0.62, 4.5)],
        "500-1000": [(40, 0.55, 5.5), (41, 0.56, 5.2), (42, 0.57, 5.1)],
    }
    ax = _Axes()
    assert report_plots._plot_slices(ax, series, 1, [40, 41, 42])
    assert [line["label"] for line in ax.lines] == ["slice 0-500", "slice 500-1000", "slice 1000-1500"]
    assert len({line["color"] for line in ax.lines}) == 3
    assert ax.lines[0]["color"] == report_plots.PLOT_COLOR
    first = ax.lines[0]
    assert first["x"] == [40, 41, 42] and math.isnan(first["y"][1])  # age 41 failed: no line through it
    assert not any(math.isnan(v) for v in ax.lines[1]["y"])


def test_the_mean_band_also_breaks_at_ages_without_metrics() -> None:
    series: report.Series = {f"{n * 10}-{n * 10 + 10}": [(40, 0.6, 5.0), (42, 0.6, 4.0)] for n in range(8)}
    ax = _Axes()
    assert report_plots._plot_band(ax, series, 2, [40, 41, 42])
    assert ax.lines[0]["x"] == [40, 41, 42] and math.isnan(ax.lines[0]["y"][1])


def test_local_mode_links_the_log_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert job_log_url("/aws/batch/job", "s/1", "us-east-1", "abc", 1).startswith("https://us-east-1.console.aws")
    monkeypatch.setenv("AGESWEEP_LOCAL", "1")
    monkeypatch.setenv("AGESWEEP_LOCAL_LOGS", str(tmp_path))
    assert job_log_url("/aws/batch/job", "s/1", "us-east-1", "abc:3", 2) == (tmp_path / "abc_3-attempt2.log").as_uri()
    failure = summary_with_failure().failures[0]
    assert failure.log_url is not None and failure.log_url.startswith("file://") and failure.log_url.endswith("-attempt1.log")
