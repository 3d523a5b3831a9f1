"""functions/format_alert on moto: the event in, one readable SNS message out (read back via SQS)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.handlers import lambda_context
from tests.handlers import load_handler as load_handler_of

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def load_handler() -> ModuleType:
    return load_handler_of("format_alert")


CONTEXT = lambda_context("FormatAlertFunction", memory_mb=256)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / name).read_text())


@pytest.fixture
def topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """An SNS topic with an SQS subscriber (raw delivery), so the test reads what people would get."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        topic_arn = sns.create_topic(Name="agesweep-alerts")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})
        monkeypatch.setenv("TOPIC_ARN", topic_arn)
        monkeypatch.setenv("LOG_GROUP", "/aws/batch/job")

        def received() -> list[dict[str, Any]]:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            return [json.loads(m["Body"]) for m in messages]

        yield {"received": received}


def run_failing_execution(definition: dict[str, Any], name: str, execution_input: dict[str, Any]) -> dict[str, Any]:
    """Run a small state machine on moto's interpreter until it stops; return the matching alert event."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    role = boto3.client("iam", region_name=REGION).create_role(RoleName=f"sfn-{name}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    machine = sfn.create_state_machine(name=f"Sweep-{name}", definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(execution_input))["executionArn"]
    for _ in range(100):
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.05)
    event = load_event("execution_failed.json")
    event["resources"] = [arn]
    event["detail"].update(executionArn=arn, stateMachineArn=machine, name=name, status=described["status"],
                           input=json.dumps(execution_input), error=described.get("error"), cause=described.get("cause"))
    return event


def test_batch_job_failed_publishes_one_readable_message(topic: dict[str, Any]) -> None:
    out = load_handler().lambda_handler(load_event("batch_job_failed.json"), CONTEXT)
    [note] = topic["received"]()
    assert note["Subject"] == out["subject"] == "agesweep job failed: age 55, run aladyn-0-10000-3f2a9c1b7e4d"
    assert note["Message"] == out["message"]
    assert "Attempt: 2 of 3" in note["Message"] and "Reason: Essential container in task exited" in note["Message"]
    assert out["message_id"] == note["MessageId"]


def test_rejected_manifest_alert_reads_the_failing_step_from_the_history(topic: dict[str, Any]) -> None:
    # A validation step that fails for real inside moto's interpreter, caught into ManifestRejected as in the ASL.
    definition = {"StartAt": "ValidateManifest", "States": {
        "ValidateManifest": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                             "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"},
                             "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ManifestRejected"}],
                             "End": True},
        "ManifestRejected": {"Type": "Fail", "Error": "ManifestRejected",
                             "Cause": "The manifest, or something it names, failed validation; no job was submitted."}}}
    execution_input = {"bucket": "no-such-bucket", "key": "manifests/aladyn.yaml", "version_id": None, "run_id": "aladyn-5e6f7a8b9c0d"}
    event = run_failing_execution(definition, "aladyn-5e6f7a8b9c0d", execution_input)
    assert event["detail"]["status"] == "FAILED"

    out = load_handler().lambda_handler(event, CONTEXT)
    [note] = topic["received"]()
    lines = note["Message"].splitlines()
    assert note["Subject"] == "agesweep run failed: aladyn-5e6f7a8b9c0d - manifest rejected"
    assert lines[0] == "Run aladyn-5e6f7a8b9c0d: the manifest was rejected."
    assert "Step error (aws-sdk:s3:getObject): s3.NoSuchBucketException" in lines
    assert any(line.startswith("The specified bucket does not exist") for line in lines)
    assert "Manifest: s3://no-such-bucket/manifests/aladyn.yaml" in lines
    assert out["message"] == note["Message"]


def test_tolerance_exceeded_alert_carries_the_collated_counts(topic: dict[str, Any]) -> None:
    collated = {"run_id": "aladyn-1a2b3c4d5e6f", "total": 40, "succeeded": 38, "failed": 2, "within_tolerance": False,
                "summary_uri": "s3://b/runs/aladyn-1a2b3c4d5e6f/summary.json",
                "report_uri": "s3://b/runs/aladyn-1a2b3c4d5e6f/report.html",
                "retry_manifest_uri": "s3://b/runs/aladyn-1a2b3c4d5e6f/retry-manifest.yaml"}
    definition = {"StartAt": "CollateResults", "States": {
        "CollateResults": {"Type": "Pass", "Result": {"collated": collated}, "ResultPath": "$.collation", "Next": "WithinTolerance"},
        "WithinTolerance": {"Type": "Choice", "Choices": [{"Variable": "$.collation.collated.within_tolerance",
                                                           "BooleanEquals": True, "Next": "SweepSucceeded"}],
                            "Default": "ToleranceExceeded"},
        "SweepSucceeded": {"Type": "Succeed"},
        "ToleranceExceeded": {"Type": "Fail", "Error": "ToleranceExceeded", "Cause": "More ages failed than the manifest tolerates."}}}
    event = run_failing_execution(definition, "aladyn-1a2b3c4d5e6f",
                                  {"bucket": "b", "key": "manifests/aladyn.yaml", "plan": {"tolerated_failure_percent": 0.0}})

    load_handler().lambda_handler(event, CONTEXT)
    [note] = topic["received"]()
    assert note["Subject"] == "agesweep run failed: aladyn-1a2b3c4d5e6f - too many ages failed"
    assert "38 succeeded / 2 failed of 40 jobs (0.0% tolerated)." in note["Message"]
    assert "Retry manifest: s3://b/runs/aladyn-1a2b3c4d5e6f/retry-manifest.yaml" in note["Message"]
