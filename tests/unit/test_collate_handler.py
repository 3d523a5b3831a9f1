"""functions/collate_results on moto: the state's real input in, the four files and the SNS text out."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from test_collate_aws import REGION, aws, run_through_moto  # noqa: F401  (aws is a fixture)

ROOT = Path(__file__).resolve().parents[2]


class Context:
    function_name = "CollateResultsFunction"
    memory_limit_in_mb = 1024
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:CollateResultsFunction"
    aws_request_id = "5b6f4c2e-1d3a-4f5e-8a7b-9c0d1e2f3a4b"


def load_handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("collate_results_app", ROOT / "functions/collate_results/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_handler_collates_the_sample_event_shape(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("BUCKET_NAME", aws["bucket"])
    monkeypatch.setenv("LOG_GROUP", "/aws/batch/agesweep-dev")
    event = run_through_moto(aws, fail_ages={55})
    out = load_handler().lambda_handler(event, Context())

    assert set(out) == {"run_id", "total", "succeeded", "failed", "within_tolerance", "subject", "message",
                        "summary_uri", "report_uri", "retry_manifest_uri"}
    json.dumps(out)  # a plain, JSON-serialisable dict for the state machine
    assert (out["total"], out["succeeded"], out["failed"], out["within_tolerance"]) == (3, 2, 1, False)
    assert len(out["subject"]) <= 100 and out["subject"].isascii()
    assert "$252Faws$252Fbatch$252Fagesweep-dev" in out["message"]
    for key in ("summary_uri", "report_uri", "retry_manifest_uri"):
        bucket, _, obj = out[key][5:].partition("/")
        aws["s3"].head_object(Bucket=bucket, Key=obj)


def test_handler_rejects_input_without_a_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "b")
    from aws_lambda_powertools.utilities.parser import ValidationError

    with pytest.raises(ValidationError):
        load_handler().lambda_handler({"results": []}, Context())
