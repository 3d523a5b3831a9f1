"""Fixtures for end-to-end tests: the real template and state machine on a local moto server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agesweep.local.cloud import LocalCloud

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["POWERTOOLS_TRACE_DISABLED"] = "1"

# Small enough for a 2-core CI machine, big enough that training is real.
TINY_DATA = {"patients": 240, "diseases": 10, "times": 52, "signatures": 3, "prs": 3}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A /data folder with tiny synthetic inputs, generated once per test session."""
    from training import synth

    root = tmp_path_factory.mktemp("data")
    synth.generate(root / "input", seed=7, **TINY_DATA)
    return root


@pytest.fixture
def make_stack(tmp_path: Path, data_dir: Path) -> Iterator:
    """Start a LocalCloud (one at a time per process); stopped at the end of the test."""
    stacks: list[LocalCloud] = []

    def start(**options: object) -> LocalCloud:
        stack = LocalCloud(workdir=tmp_path / "work", data_dir=data_dir, workers=2, **options)  # type: ignore[arg-type]
        stack.start()
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.stop()


def write_manifest(path: Path, ages: list[int], *, run_name: str, epochs: int = 3, end_index: int = 240, extra: str = "") -> Path:
    path.write_text(
        f"""schema_version: 1
run_name: {run_name}
ages: {ages}
slices:
  - {{start_index: 0, end_index: {end_index}}}
input: /data/input
output: /data/output
max_concurrency: 4
tolerated_failure_percent: 0
training: {{epochs: {epochs}, seed: 1}}
{extra}""",
        encoding="utf-8",
    )
    return path
