"""functions/collate_results on moto: the state's real input in, the four files and the SNS text out."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from test_collate_aws import REGION, aws, run_through_moto  # noqa: F401  (aws is a fixture)

from tests.handlers import lambda_context
from tests.handlers import load_handler as load_handler_of

ROOT = Path(__file__).resolve().parents[2]


def load_handler() -> ModuleType:
    return load_handler_of("collate_results")


CONTEXT = lambda_context("CollateResultsFunction", memory_mb=1024)


def test_handler_collates_the_sample_event_shape(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("BUCKET_NAME", aws["bucket"])
    monkeypatch.setenv("LOG_GROUP", "/aws/batch/agesweep-dev")
    event = run_through_moto(aws, fail_ages={55})
    out = load_handler().lambda_handler(event, CONTEXT)

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
        load_handler().lambda_handler({"results": []}, CONTEXT)
