"""The example manifests' inline containers register on Batch (moto) as the state machine's
RegisterJobDefinition state sends them: the plan's PascalCase request, camelCased for boto3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agesweep.aws import camel_case
from agesweep.plan import validate_and_plan
from agesweep.settings import Settings

EXAMPLES = Path(__file__).parents[2] / "events" / "manifests"
REGION = "us-east-1"
TRIAGE_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:triage/postgres-password-AbCdEf"
STACK = Settings(
    bucket_name="agesweep-stack", job_definition="arn:aws:batch:us-east-1:123456789012:job-definition/agesweep-job:1",
    allowed_buckets=frozenset({"pulse-data", "pulse-results", "triage-results", "triage-experiments"}),
    allowed_secrets=frozenset({TRIAGE_SECRET}),
    job_role_arn="arn:aws:iam::123456789012:role/job", job_execution_role_arn="arn:aws:iam::123456789012:role/exec",
    efs_file_system_id="fs-0123456789abcdef0", efs_access_point_id="fsap-0123456789abcdef0",
)


@pytest.fixture
def batch() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("batch", region_name=REGION)


def _register(batch: Any, file: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the plan's request, the definition Batch describes after registering it)."""
    plan = validate_and_plan((EXAMPLES / file).read_bytes(), file, STACK, run_id="example-0123456789ab")
    request = plan.job_definition_request
    assert plan.register_job_definition and request is not None
    registered = batch.register_job_definition(**camel_case(request))
    described = batch.describe_job_definitions(jobDefinitions=[registered["jobDefinitionArn"]])["jobDefinitions"]
    assert len(described) == 1 and described[0]["status"] == "ACTIVE"
    return request, described[0]


def _resources(definition: dict[str, Any]) -> dict[str, str]:
    return {r["type"]: r["value"] for r in definition["containerProperties"]["resourceRequirements"]}


@pytest.mark.parametrize("file", ["pulse-retrodiction.yaml", "triage-experiments.yaml", "sen2cor-scenes.yaml"])
def test_each_example_registers_as_its_command_with_the_stacks_roles(batch: Any, file: str) -> None:
    request, definition = _register(batch, file)
    container = definition["containerProperties"]
    assert definition["jobDefinitionName"] == request["JobDefinitionName"]
    assert definition["jobDefinitionName"].startswith("agesweep-")  # what the state machine role may register
    assert definition["type"] == "container"
    assert container["command"] == request["ContainerProperties"]["Command"]
    assert container["image"] == request["ContainerProperties"]["Image"]
    assert container["jobRoleArn"] == STACK.job_role_arn
    assert container["executionRoleArn"] == STACK.job_execution_role_arn
    assert definition["timeout"]["attemptDurationSeconds"] == request["Timeout"]["AttemptDurationSeconds"]
    assert definition["retryStrategy"]["attempts"] == request["RetryStrategy"]["Attempts"]
    assert definition["tags"]["agesweep:run_id"] == "example-0123456789ab"


def test_pulse_registers_its_resources_and_plain_environment(batch: Any) -> None:
    _, definition = _register(batch, "pulse-retrodiction.yaml")
    container = definition["containerProperties"]
    assert _resources(definition) == {"VCPU": "4", "MEMORY": "16384"}
    assert {e["name"]: e["value"] for e in container["environment"]} == {
        "DATA_BUCKET": "pulse-data", "RESULTS_BUCKET": "pulse-results"
    }
    assert container.get("secrets", []) == []
    assert definition["timeout"]["attemptDurationSeconds"] == 48 * 3600
    assert "Ref::window_start" in container["command"] and "Ref::output_folder" in container["command"]


def test_triage_password_registers_as_a_secret_not_environment(batch: Any) -> None:
    _, definition = _register(batch, "triage-experiments.yaml")
    container = definition["containerProperties"]
    assert container["secrets"] == [{"name": "POSTGRES_PASSWORD", "valueFrom": TRIAGE_SECRET}]
    assert "POSTGRES_PASSWORD" not in {e["name"] for e in container["environment"]}
    assert {e["name"]: e["value"] for e in container["environment"]}["POSTGRES_PORT"] == "5432"
    assert _resources(definition) == {"VCPU": "1", "MEMORY": "16384"}
    assert "volumes" not in container or container["volumes"] == []


def test_sen2cor_registers_the_stacks_efs_at_data(batch: Any) -> None:
    _, definition = _register(batch, "sen2cor-scenes.yaml")
    container = definition["containerProperties"]
    assert _resources(definition) == {"VCPU": "2", "MEMORY": "8192"}
    assert container["mountPoints"] == [{"sourceVolume": "data", "containerPath": "/data", "readOnly": False}]
    efs = container["volumes"][0]["efsVolumeConfiguration"]
    assert efs["fileSystemId"] == STACK.efs_file_system_id and efs["transitEncryption"] == "ENABLED"
    assert efs["authorizationConfig"] == {"accessPointId": STACK.efs_access_point_id, "iam": "ENABLED"}


def test_an_inline_container_logs_where_the_stacks_definition_does(batch: Any) -> None:
    """The validate Lambda describes the stack's definition in preflight; the registered revision
    takes its awslogs group, so failure alerts find the log tail (offline: Batch's default group)."""
    from agesweep.manifest import parse_manifest
    from agesweep.plan import plan

    manifest = parse_manifest((EXAMPLES / "sen2cor-scenes.yaml").read_bytes(), "s.yaml", STACK)
    options = {"awslogs-group": "agesweep-JobLogGroup", "awslogs-region": REGION, "awslogs-stream-prefix": "agesweep"}
    described = {"containerProperties": {"logConfiguration": {"logDriver": "awslogs", "options": options}}}
    request = plan(manifest, STACK, "s-1", job_definition_description=described).job_definition_request
    assert request is not None
    assert request["ContainerProperties"]["LogConfiguration"] == {"LogDriver": "awslogs", "Options": options}
    registered = batch.register_job_definition(**camel_case(request))["jobDefinitionArn"]
    definition = batch.describe_job_definitions(jobDefinitions=[registered])["jobDefinitions"][0]
    assert definition["containerProperties"]["logConfiguration"]["options"] == options
    offline = plan(manifest, STACK, "s-1").job_definition_request
    assert offline is not None and "LogConfiguration" not in offline["ContainerProperties"]
