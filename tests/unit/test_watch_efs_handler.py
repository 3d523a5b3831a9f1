"""functions/watch_efs on moto: the scheduled event in, a settled manifest uploaded with its origin."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.handlers import lambda_context, load_handler

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "events" / "efs_watch_scheduled.json").read_text())
CONTEXT = lambda_context("WatchEfsFunction")
BUCKET = "agesweep-dev-bucket"


def test_scheduled_looks_upload_a_settled_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="t")["TopicArn"]
        for name, value in {"BUCKET_NAME": BUCKET, "TOPIC_ARN": topic, "WATCH_FOLDER": "/data/manifests/",
                            "DATA_MOUNT": str(tmp_path)}.items():
            monkeypatch.setenv(name, value)
        handler = load_handler("watch_efs").lambda_handler
        assert handler(EVENT, CONTEXT)["baseline"] is True
        (folder / "m.yaml").write_text("run_name: m\n")
        assert handler({**EVENT, "time": "2025-11-25T10:16:00Z"}, CONTEXT)["settling"] == ["m.yaml"]
        result = handler({**EVENT, "time": "2025-11-25T10:17:00Z"}, CONTEXT)
        assert [(t["path"], t["outcome"], t["key"]) for t in result["taken"]] == [("m.yaml", "uploaded", "manifests/efs/m.yaml")]
        assert s3.head_object(Bucket=BUCKET, Key="manifests/efs/m.yaml")["Metadata"]["source"] == "efs:/data/manifests/m.yaml"
