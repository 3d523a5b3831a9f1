"""functions/start_run with the events/ fixtures against moto's Step Functions (and EventBridge for the rule)."""

from __future__ import annotations

import base64
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
    # counted as a duplicate, not as "run started" (issue item 16)
    assert again == {"run_id": first["run_id"], "started": False, "reason": "duplicate", "execution_arn": first["execution_arn"]}


def test_redelivered_event_after_the_run_ended_is_a_duplicate(start_run: ModuleType, state_machine_arn: str) -> None:
    event = load_event("s3_object_created.json")
    first = start_run.lambda_handler(event, LambdaContext())
    boto3.client("stepfunctions").stop_execution(executionArn=first["execution_arn"])

    again = start_run.lambda_handler(event, LambdaContext())

    assert again == {"run_id": first["run_id"], "started": False, "reason": "duplicate", "execution_arn": first["execution_arn"]}
    assert [e["status"] for e in executions(state_machine_arn)] == ["ABORTED"]


def test_a_new_version_starts_a_second_run(start_run: ModuleType, state_machine_arn: str) -> None:
    event = load_event("s3_object_created.json")
    first = start_run.lambda_handler(event, LambdaContext())
    second = start_run.lambda_handler(with_version(event, "Ep3xqZ0mVGnkq2bJ7vP9dYt1RkLw8sHc"), LambdaContext())
    assert second["started"] is True and second["run_id"] != first["run_id"]
    assert {e["name"] for e in executions(state_machine_arn)} == {first["run_id"], second["run_id"]}


# --- identical bytes uploaded again (issue item 16) -------------------------------------------------

MANIFEST = (ROOT / "events" / "manifests" / "demo.yaml").read_bytes()
BUCKET = "agesweep-dev-bucket-1a2b3c4d5e6f"


@pytest.fixture
def upload(state_machine_arn: str) -> Any:
    """put_object into a versioned moto bucket; returns the Object Created event of the new version."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    template = load_event("s3_object_created.json")

    def put(body: bytes = MANIFEST, key: str = "manifests/demo.yaml", **extra: Any) -> dict[str, Any]:
        version = s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)["VersionId"]
        event = with_version(template, version)
        event["detail"]["object"]["key"] = key
        return event

    return put


def test_identical_bytes_uploaded_again_start_nothing(start_run: ModuleType, state_machine_arn: str, upload: Any,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    first = start_run.lambda_handler(upload(), LambdaContext())
    assert first["started"] is True
    second_event = upload()  # `aws s3 cp` twice: a new version, the same bytes
    second = start_run.lambda_handler(second_event, LambdaContext())
    obj = second_event["detail"]["object"]
    assert second == {"run_id": run_id_for(BUCKET, obj["key"], obj["version-id"]), "started": False,
                      "reason": "identical", "identical_to": first["run_id"]}
    assert [e["name"] for e in executions(state_machine_arn)] == [first["run_id"]]
    assert '"IdenticalManifestUploads":[1.0]' in capsys.readouterr().out
    record = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"skipped/{second['run_id']}.json")["Body"].read()
    assert json.loads(record)["identical_to"] == first["run_id"]  # what `agesweep runs` lists
    # the skipped version's event delivered again: a duplicate, not a second identical upload
    assert start_run.lambda_handler(copy.deepcopy(second_event), LambdaContext()) == {
        "run_id": second["run_id"], "started": False, "reason": "duplicate"}
    assert capsys.readouterr().out.count("IdenticalManifestUploads") == 0
    # a third identical upload is still compared with the latest *run*, not with the skipped version
    third = start_run.lambda_handler(upload(), LambdaContext())
    assert third["reason"] == "identical" and third["identical_to"] == first["run_id"]


def test_changed_bytes_or_a_requested_rerun_start_a_run(start_run: ModuleType, state_machine_arn: str, upload: Any) -> None:
    first = start_run.lambda_handler(upload(), LambdaContext())
    changed = start_run.lambda_handler(upload(MANIFEST + b"\n# edited\n"), LambdaContext())
    assert changed["started"] is True and "identical_to" not in changed
    rerun = start_run.lambda_handler(upload(MANIFEST + b"\n# edited\n", Metadata={"agesweep-rerun": "true"}), LambdaContext())
    assert rerun["started"] is True and rerun["reason"] == "rerun requested" and rerun["identical_to"] == changed["run_id"]
    other_key = start_run.lambda_handler(upload(key="manifests/other.yaml"), LambdaContext())
    assert other_key["started"] is True  # the comparison is per key
    assert len(executions(state_machine_arn)) == 4 and first["started"]


def test_sha256_comes_from_the_checksum_or_submit_metadata_before_the_bytes(start_run: ModuleType, upload: Any) -> None:
    start_run.lambda_handler(upload(Metadata={"sha256": "ab" * 32}), LambdaContext())
    # different bytes, same declared sha256: the metadata is what was compared (no GetObject needed)
    same_declared = start_run.lambda_handler(upload(b"ages: [50]\n", Metadata={"sha256": "ab" * 32}), LambdaContext())
    assert same_declared["reason"] == "identical"
    with_checksum = upload(key="manifests/c.yaml", ChecksumAlgorithm="SHA256")
    assert start_run.lambda_handler(with_checksum, LambdaContext())["started"] is True
    again = start_run.lambda_handler(upload(key="manifests/c.yaml"), LambdaContext())
    assert again["reason"] == "identical"  # S3's ChecksumSHA256 and the hashed bytes agree


def test_start_decisions() -> None:
    import hashlib
    from datetime import UTC, datetime, timedelta

    from agesweep import start

    digest = hashlib.sha256(b"x").digest()
    assert start.checksum_hex(base64.b64encode(digest).decode()) == digest.hex()
    assert start.checksum_hex("abc=-3") is None and start.checksum_hex(None) is None and start.checksum_hex("!!") is None
    latest = start.LatestRun("demo-1", "v1", "aa", "SUCCEEDED")
    assert start.decide("aa", latest, rerun=False) == start.Decision(False, "identical", "aa", "demo-1")
    assert start.decide("aa", latest, rerun=True).start and start.decide("bb", latest, rerun=False).start
    assert start.decide("aa", None, rerun=False).start
    assert start.rerun_requested({"Metadata": {"Agesweep-Rerun": "TRUE"}}) and not start.rerun_requested({})
    now = datetime.now(UTC)
    assert start.is_redelivery(now - timedelta(minutes=5), now) and not start.is_redelivery(now, now)


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


def test_a_skipped_upload_shows_in_agesweep_runs_and_submit_returns_the_earlier_run(
    start_run: ModuleType, state_machine_arn: str, upload: Any
) -> None:
    from agesweep.operations.deployment import AwsClients, DeployedStack
    from agesweep.operations.runs import list_runs
    from agesweep.operations.submit import submit_manifest

    first = start_run.lambda_handler(upload(), LambdaContext())
    skipped = start_run.lambda_handler(upload(), LambdaContext())  # `aws s3 sync` after a `touch`
    stack = DeployedStack("agesweep", "us-east-1", BUCKET, state_machine_arn, "q", "d", "t", "g", {}, AwsClients("us-east-1"))
    listed = {r.run_id: r for r in list_runs(stack)}
    assert listed[skipped["run_id"]].status == "SKIPPED" and listed[skipped["run_id"]].identical_to == first["run_id"]
    assert listed[first["run_id"]].status == "RUNNING" and listed[skipped["run_id"]].duration_s is None
    # `agesweep submit` of the same bytes: nothing uploaded, the run those bytes already have
    submission = submit_manifest(stack, MANIFEST, "demo.yaml", source="file:demo.yaml", wait_s=1)
    assert (submission.run_id, submission.uploaded) == (first["run_id"], False)
    # --force/--rerun uploads with agesweep-rerun: true, which start_run honours
    head_of = boto3.client("s3").head_object
    forced = upload(Metadata={"sha256": "0" * 64, "agesweep-rerun": "true"})
    assert start_run.lambda_handler(forced, LambdaContext())["started"] is True
    assert head_of(Bucket=BUCKET, Key="manifests/demo.yaml")["Metadata"]["agesweep-rerun"] == "true"


def test_a_redelivery_racing_the_first_is_counted_as_a_duplicate(
    start_run: ModuleType, state_machine_arn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both deliveries see no execution yet; StartExecution hands the second the first's execution."""
    import time

    monkeypatch.setattr(start_run.start, "describe", lambda *args: None)
    monkeypatch.setattr(start_run.start, "REDELIVERY_SLACK_S", 0.0)
    event = load_event("s3_object_created.json")
    first = start_run.lambda_handler(event, LambdaContext())
    time.sleep(0.2)
    again = start_run.lambda_handler(copy.deepcopy(event), LambdaContext())
    assert first["started"] is True
    assert again == {"run_id": first["run_id"], "started": False, "reason": "duplicate", "execution_arn": first["execution_arn"]}
    out = capsys.readouterr().out
    assert out.count('"RunsStarted":[1.0]') == 1 and out.count('"DuplicateManifestEvents":[1.0]') == 1
