"""report.html in a real browser: headless Chromium (Debian package `chromium`) renders the file
offline and the plot must be visible — decoded with a real size, and painted on screen.

Chromium missing is a failure, not a skip: CI installs it (apt-get install -y chromium).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import summary_with_failure

from agesweep import report, report_plots

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--force-device-scale-factor=1",
]
VIEWPORT = (1000, 1600)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is not installed: as root run `apt-get update && apt-get install -y chromium` "
                "(the browser test renders report.html and must not be skipped)")


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


def plot_pixels(png: Path) -> int:
    """Pixels within a small distance of the plot's series colour (nothing else on the page uses it)."""
    import matplotlib.image as mpimg
    import numpy as np

    image = mpimg.imread(png)[..., :3]
    if image.dtype != np.uint8:
        image = (image * 255).round()
    target = np.array([int(report_plots.PLOT_COLOR[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    distance = np.abs(image.astype(float) - target).sum(axis=-1)
    return int((distance < 40).sum())


@pytest.mark.slow
def test_report_plot_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(report.render_report(summary_with_failure()), encoding="utf-8")

    # 1. The image decodes in the browser: a copy of the page reports its natural size into the DOM.
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace(
        "</body>",
        "<script>window.addEventListener('load',()=>{const i=document.getElementById('metrics-plot');"
        "document.body.setAttribute('data-plot',i.complete+'x'+i.naturalWidth+'x'+i.naturalHeight);"
        "const l=document.getElementById('loss-plot');"
        "document.body.setAttribute('data-loss',l.complete+'x'+l.naturalWidth+'x'+l.naturalHeight);});</script></body>",
    ))
    dom = run_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    match = re.search(r'data-plot="(\w+)x(\d+)x(\d+)"', dom.stdout)
    assert match, f"page did not load in chromium: rc={dom.returncode} stderr={dom.stderr[-2000:]}"
    assert match.group(1) == "true" and int(match.group(2)) >= 800 and int(match.group(3)) >= 500, match.group(0)
    loss = re.search(r'data-loss="(\w+)x(\d+)x(\d+)"', dom.stdout)  # the loss curves decode too
    assert loss and loss.group(1) == "true" and int(loss.group(2)) >= 800 and int(loss.group(3)) >= 300, dom.stdout[-500:]

    # 2. The plot is painted: the screenshot holds many pixels of the series colour (markers and
    # legend: ages 54 and 56 only, the line breaks at the failed age 55 between them).
    shot = tmp_path / "shot.png"
    result = run_chromium(tmp_path, f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}", f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), f"no screenshot: rc={result.returncode} stderr={result.stderr[-2000:]}"
    painted = plot_pixels(shot)
    assert painted > 200, f"only {painted} plot-coloured pixels in the screenshot"

    # 3. The same page with the image data broken paints none of them: the check above can fail.
    broken = tmp_path / "broken.html"
    broken.write_text(re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,AAAA", page.read_text()))
    shot_broken = tmp_path / "broken.png"
    run_chromium(tmp_path, f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}", f"--screenshot={shot_broken}", broken.as_uri())
    assert shot_broken.exists()
    assert plot_pixels(shot_broken) < 50
