"""Tiny synthetic inputs shared by the trainer tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.synth import generate

TINY = {"patients": 80, "diseases": 6, "times": 52, "signatures": 3, "prs": 3}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Deterministic and polite on a shared 2-core machine."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("tiny_inputs"), seed=3, **TINY)
