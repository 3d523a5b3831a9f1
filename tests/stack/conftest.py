"""Fixtures for the stack checks: the template, the ASL, the events/ fixtures, tool paths.

Env is set before any handler is imported (the handlers build boto3 clients at import time).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "agesweep")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "agesweep")
os.environ.setdefault("SAM_CLI_TELEMETRY", "0")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "sweep.asl.json"
EVENTS = ROOT / "events"


def tool(name: str) -> str:
    """A console script of this interpreter's environment (the dev extras), else one on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return found


def load_template() -> dict[str, Any]:
    """template.yaml with intrinsics as plain dicts ({"Ref": ...}, {"Fn::GetAtt": [...]})."""
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(TEMPLATE))


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def asl_text() -> str:
    return ASL.read_text()


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def tool_env() -> dict[str, str]:
    """No credentials and no network needed: a region is enough for sam validate/cfn-lint."""
    return {**os.environ, "AWS_DEFAULT_REGION": os.environ["AWS_DEFAULT_REGION"], "SAM_CLI_TELEMETRY": "0"}


def pyproject() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements_of(*extras: str, core: bool = True) -> list[Any]:
    """What `pip install 'agesweep[EXTRAS]'` asks for, as packaging Requirements, agesweep[...] expanded.

    Within pyproject.toml only (not the packages' own dependencies). An unknown extra is a KeyError.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = pyproject()
    optional = project["optional-dependencies"]
    seen: set[str] = set()
    found: list[Requirement] = []

    def add(lines: list[str]) -> None:
        for line in lines:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
                for extra in sorted(requirement.extras - seen):
                    seen.add(extra)
                    add(optional[extra])
            elif str(requirement) not in {str(r) for r in found}:
                found.append(requirement)

    if core:
        add(project["dependencies"])
    for extra in extras:
        seen.add(extra)
        add(optional[extra])
    return found


@pytest.fixture(scope="session")
def sam_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`sam build` of template.yaml into a fresh build dir (one per session): the layers and functions as shipped.

    --no-cached: samconfig.toml turns the cache on, and a cached layer is only rebuilt when its
    ContentUri changes (not when pyproject.toml's pins do). PYTHON is this interpreter, for the Makefile's
    layer targets (tomllib, pip); an outer make's MAKEFLAGS would leak its command-line variables in.
    """
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
    env = {k: v for k, v in tool_env().items() if k not in drop}
    env["PYTHON"] = sys.executable
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    args = [tool("sam"), "build", "--template-file", str(TEMPLATE), "--build-dir", str(build_dir),
            "--no-cached", "--cache-dir", str(tmp_path_factory.mktemp("sam-cache"))]
    done = subprocess.run(args, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"sam build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    yield build_dir
    shutil.rmtree(build_dir.parent, ignore_errors=True)  # ~130 MB of layers
