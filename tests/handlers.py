"""Load a Lambda handler from functions/<step>/app.py the way local mode does, with its context."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from agesweep.local.lambdas import LambdaContext

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"


def load_handler(step: str) -> ModuleType:
    """Import functions/<step>/app.py fresh (its powertools objects read the env set by the test)."""
    spec = importlib.util.spec_from_file_location(f"{step}_app", ROOT / "functions" / step / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def lambda_context(function_name: str, memory_mb: int = 512) -> LambdaContext:
    return LambdaContext(
        function_name=function_name,
        memory_limit_in_mb=memory_mb,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}",
    )
