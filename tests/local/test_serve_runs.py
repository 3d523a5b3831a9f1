"""`agesweep local --serve` driven only by what its panel prints: the export line, the stack name;
each run that ends is saved under <workdir>/runs/, and --simulate-failure hits the first run only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agesweep.contracts import Summary
from tests.local.conftest import write_manifest


def _wait_for_file(path: Path, server: subprocess.Popen[str], log: Path, timeout_s: float) -> Path:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert server.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no {path}:\n{log.read_text()}"
        time.sleep(0.3)
    time.sleep(0.5)  # the other artifacts of the run are downloaded in the same poll
    return path


def _panel_env(text: str) -> dict[str, str]:
    """The environment the panel's `export` line sets, on a shell with no AWS settings of its own."""
    (line,) = [line for line in text.splitlines() if line.startswith("export ")]
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(item.split("=", 1) for item in line.split()[1:])
    return env


def _agesweep(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "agesweep.cli", *args, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_serve_saves_every_run_and_simulates_the_first_run_only(tmp_path: Path, data_dir: Path) -> None:
    workdir, log = tmp_path / "serve", tmp_path / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "agesweep.cli", "local", "--serve", "--workdir", str(workdir), "--data", str(data_dir),
             "--workers", "2", "--simulate-failure", "45"],
            stdout=sink, stderr=subprocess.STDOUT, text=True,
        )
    try:
        _wait_for_file(workdir / "endpoint.json", server, log, 90)
        panel = log.read_text()
        assert "agesweep-local" in panel and "--stack agesweep-local" in panel
        env = _panel_env(panel)
        assert {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"} <= env.keys()

        manifest = write_manifest(tmp_path / "first.yaml", [44, 45], run_name="first", epochs=1)
        run_id = _agesweep(env, "submit", str(manifest), "--stack", "agesweep-local")["run_id"]
        summary_file = _wait_for_file(workdir / "runs" / run_id / "summary.json", server, log, 240)
        first = Summary.model_validate_json(summary_file.read_bytes())
        assert {part.age: part.status for part in first.slices()} == {44: "SUCCEEDED", 45: "FAILED"}
        assert (workdir / "runs" / run_id / "retry-manifest.yaml").exists()
        notes = _wait_for_file(workdir / "runs" / run_id / "notifications.jsonl", server, log, 60).read_text()
        assert "age 45" in notes  # the job-failed alert, kept with its run like a foreground run's

        (retry,) = _agesweep(env, "retry", run_id, "--stack", "agesweep-local")["submitted"]
        retried = _wait_for_file(workdir / "runs" / retry["run_id"] / "summary.json", server, log, 240)
        second = Summary.model_validate_json(retried.read_bytes())
        assert {part.age: part.status for part in second.slices()} == {45: "SUCCEEDED"}
        assert f"run {retry['run_id']} ended" in log.read_text()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
