"""functions/start_run with the events/ fixtures against moto's Step Functions (and EventBridge for the rule)."""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from agesweep.runs import run_id_for

from .conftest import ASL, ROOT, load_event
from .test_tools import substituted_asl

ACCOUNT = "123456789012"


@dataclass
class LambdaContext:
    function_name: str = "StartRunFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:StartRunFunction"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"


@pytest.fixture
def state_machine_arn(template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real sweep definition in moto; executions stay RUNNING (no interpreter), which is all start_run needs."""
    monkeypatch.delenv("SF_EXECUTION_SIMULATION", raising=False)
    with mock_aws():
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(
            name="SweepStateMachine",
            definition=substituted_asl(ASL.read_text(), template),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/sweep",
        )["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", arn)
        yield arn


@pytest.fixture
def start_run(state_machine_arn: str) -> ModuleType:
    """functions/start_run/app.py, imported fresh inside the mock (its client is built at import)."""
    spec = importlib.util.spec_from_file_location("start_run_app", ROOT / "functions" / "start_run" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def executions(arn: str) -> list[dict[str, Any]]:
    return boto3.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]


def with_version(event: dict[str, Any], version_id: str) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    changed["detail"]["object"]["version-id"] = version_id
    return changed


def test_first_event_starts_an_execution_named_run_id(start_run: ModuleType, state_machine_arn: str) -> None:
    event = load_event("s3_object_created.json")
    obj = event["detail"]["object"]
    run_id = run_id_for(event["detail"]["bucket"]["name"], obj["key"], obj["version-id"])

    result = start_run.lambda_handler(event, LambdaContext())

    (execution,) = executions(state_machine_arn)
    assert execution["name"] == run_id == result["run_id"]
    assert result["started"] is True and result["execution_arn"] == execution["executionArn"]
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {
        "bucket": event["detail"]["bucket"]["name"],
        "key": obj["key"],
        "version_id": obj["version-id"],
        "run_id": run_id,
    }


def test_fixture_input_is_the_validate_fixture(start_run: ModuleType, state_machine_arn: str) -> None:
    """events/ is one chain: the input start_run writes is what validate_manifest's fixture holds."""
    start_run.lambda_handler(load_event("s3_object_created.json"), LambdaContext())
    (execution,) = executions(state_machine_arn)
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == load_event("validate_manifest.json")


def test_redelivered_event_while_running_starts_nothing_new(start_run: ModuleType, state_machine_arn: str) -> None:
    event = load_event("s3_object_created.json")
    first = start_run.lambda_handler(event, LambdaContext())
    again = start_run.lambda_handler(copy.deepcopy(event), LambdaContext())
    assert len(executions(state_machine_arn)) == 1
    # Step Functions answers a same-name, same-input StartExecution of a running execution with that execution.
    assert again["run_id"] == first["run_id"] and again["execution_arn"] == first["execution_arn"]


def test_redelivered_event_after_the_run_ended_is_a_duplicate(start_run: ModuleType, state_machine_arn: str) -> None:
    event = load_event("s3_object_created.json")
    first = start_run.lambda_handler(event, LambdaContext())
    boto3.client("stepfunctions").stop_execution(executionArn=first["execution_arn"])

    again = start_run.lambda_handler(event, LambdaContext())

    assert again == {"run_id": first["run_id"], "started": False, "reason": "duplicate"}
    assert [e["status"] for e in executions(state_machine_arn)] == ["ABORTED"]


def test_a_new_version_starts_a_second_run(start_run: ModuleType, state_machine_arn: str) -> None:
    event = load_event("s3_object_created.json")
    first = start_run.lambda_handler(event, LambdaContext())
    second = start_run.lambda_handler(with_version(event, "Ep3xqZ0mVGnkq2bJ7vP9dYt1RkLw8sHc"), LambdaContext())
    assert second["started"] is True and second["run_id"] != first["run_id"]
    assert {e["name"] for e in executions(state_machine_arn)} == {first["run_id"], second["run_id"]}


def test_console_folder_marker_starts_nothing(start_run: ModuleType, state_machine_arn: str) -> None:
    result = start_run.lambda_handler(load_event("s3_object_created_folder.json"), LambdaContext())
    assert result == {"started": False, "reason": "folder marker"}
    assert executions(state_machine_arn) == []


def test_an_event_of_another_shape_is_rejected(start_run: ModuleType, state_machine_arn: str) -> None:
    with pytest.raises(ValidationError):
        start_run.lambda_handler(load_event("validate_manifest.json"), LambdaContext())
    assert executions(state_machine_arn) == []


# --- the rule that feeds it --------------------------------------------------------------------------


def delivered_by_manifest_rule(template: dict[str, Any], event: dict[str, Any]) -> list[dict[str, Any]]:
    """Put `event` on a moto bus that holds ManifestCreatedRule's pattern (bucket resolved); what reaches its target."""
    pattern = json.loads(json.dumps(template["Resources"]["ManifestCreatedRule"]["Properties"]["EventPattern"]))
    bucket = load_event("s3_object_created.json")["detail"]["bucket"]["name"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "ManifestBucket"}]
    pattern["detail"]["bucket"]["name"] = [bucket]
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="start-run")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="ManifestCreatedRule", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="ManifestCreatedRule", Targets=[{"Id": "StartRun", "Arn": queue_arn}])
        events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": event["resources"],
                }
            ]
        )
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]


def test_manifest_rule_matches_the_fixture(template: dict[str, Any]) -> None:
    (delivered,) = delivered_by_manifest_rule(template, load_event("s3_object_created.json"))
    assert delivered["detail"]["object"]["key"] == "manifests/aladyn-0-10000.yaml"


def test_manifest_rule_ignores_objects_outside_manifests(template: dict[str, Any]) -> None:
    event = load_event("s3_object_created.json")
    event["detail"]["object"]["key"] = "runs/aladyn-0-10000-778b1c523b55/summary.json"
    assert delivered_by_manifest_rule(template, event) == []
