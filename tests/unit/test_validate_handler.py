"""functions/validate_manifest/app.py end to end on moto: S3 read by version, plan, domain errors."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agesweep.errors import InputMissing, ManifestInvalid, PreflightFailed

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "events" / "validate_manifest.json").read_text())
SEED = (ROOT / "events" / "manifests" / "aladyn-0-10000.yaml").read_bytes()
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/aladyn:v2"


@dataclass
class LambdaContext:
    function_name: str = "ValidateManifestFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ValidateManifestFunction"
    aws_request_id: str = "7c5f4f4e-0000-4000-8000-000000000000"


def _load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validate_manifest_app", ROOT / "functions" / "validate_manifest" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, Any]]:
    saved = dict(os.environ)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=EVENT["bucket"])
        s3.put_bucket_versioning(Bucket=EVENT["bucket"], VersioningConfiguration={"Status": "Enabled"})
        batch, iam = boto3.client("batch"), boto3.client("iam")
        role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        ce = batch.create_compute_environment(
            computeEnvironmentName="agesweep-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
        )["computeEnvironmentArn"]
        queue = batch.create_job_queue(
            jobQueueName="agesweep-queue", state="ENABLED", priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
        )["jobQueueArn"]
        definition = batch.register_job_definition(
            jobDefinitionName="agesweep-job", type="container", parameters={"epochs": "200"},
            containerProperties={"image": "old:1", "command": ["python", "-m", "training.train"],
                                 "resourceRequirements": [{"type": "VCPU", "value": "32"}, {"type": "MEMORY", "value": "131072"}]},
        )["jobDefinitionArn"]
        ecr = boto3.client("ecr")
        ecr.create_repository(repositoryName="aladyn")
        ecr.put_image(repositoryName="aladyn", imageTag="v2", imageManifest=json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "config": {"digest": "sha256:" + "c" * 64}}))
        os.environ.update(BUCKET_NAME=EVENT["bucket"], JOB_QUEUE_ARN=queue, JOB_DEFINITION_ARN=definition)
        yield {"s3": s3, "app": _load_app(), "queue": queue, "definition": definition}
    os.environ.clear()
    os.environ.update(saved)


def _invoke(stack: dict[str, Any], body: bytes | None, key: str = EVENT["key"], **event: Any) -> dict[str, Any]:
    version = None
    if body is not None:
        version = stack["s3"].put_object(Bucket=EVENT["bucket"], Key=key, Body=body)["VersionId"]
    payload = {**EVENT, "key": key, "version_id": version, **event}
    return stack["app"].lambda_handler(payload, LambdaContext())


def test_seed_manifest_is_planned_from_the_exact_version(stack: dict[str, Any]) -> None:
    plan = _invoke(stack, SEED)
    assert [i["job_name"] for i in plan["items"]][15] == "aladyn-0-10000-age-55" and len(plan["items"]) == 40
    assert plan["run_id"] == EVENT["run_id"] and plan["manifest"]["version_id"]
    assert plan["manifest"]["bucket"] == EVENT["bucket"] and plan["manifest"]["key"] == EVENT["key"]
    assert plan["job_queue"] == stack["queue"] and plan["job_definition"] == {"ref": stack["definition"]}
    assert plan["results_uri"] == f"s3://{EVENT['bucket']}/runs/{EVENT['run_id']}/"
    assert plan["items"][0]["parameters"]["results_uri"] == plan["results_uri"]
    json.dumps(plan)


def test_an_older_version_is_read_not_the_latest(stack: dict[str, Any]) -> None:
    first = stack["s3"].put_object(Bucket=EVENT["bucket"], Key="manifests/v.yaml", Body=SEED)["VersionId"]
    stack["s3"].put_object(Bucket=EVENT["bucket"], Key="manifests/v.yaml", Body=b"broken: [")
    plan = stack["app"].lambda_handler({**EVENT, "key": "manifests/v.yaml", "version_id": first}, LambdaContext())
    assert plan["totals"]["jobs"] == 40


def test_invalid_manifest_raises_manifest_invalid_with_every_problem(stack: dict[str, Any]) -> None:
    body = SEED.replace(b"vcpus: 2", b"vcpu: 2").replace(b"from: 40", b"from: 20")
    with pytest.raises(ManifestInvalid) as caught:
        _invoke(stack, body, key="manifests/bad.yaml")
    assert str(caught.value).splitlines() == [
        "ages: 20, 21, 22, 23, 24, … outside the allowed ages (40..79)",
        "job.vcpu: unknown field 'vcpu' (did you mean 'vcpus'? allowed: definition, queue, image, vcpus, "
        "memory_mib, gpus, timeout_minutes, attempts, spot_reclaims_before_on_demand, container, parameters)",
    ]


def test_missing_object_and_version_are_input_missing(stack: dict[str, Any]) -> None:
    with pytest.raises(InputMissing, match="^manifest: s3://.*/manifests/nope.yaml not found: NoSuchKey"):
        _invoke(stack, None, key="manifests/nope.yaml")
    stack["s3"].put_object(Bucket=EVENT["bucket"], Key="manifests/x.yaml", Body=SEED)
    with pytest.raises(InputMissing, match="version"):
        _invoke(stack, None, key="manifests/x.yaml", version_id="not-a-real-version")


def test_unusable_queue_is_a_preflight_failure(stack: dict[str, Any]) -> None:
    body = SEED.replace(b"job:\n", b"job:\n  queue: no-such-queue\n")
    with pytest.raises(PreflightFailed, match="^job.queue: job queue 'no-such-queue' not found"):
        _invoke(stack, body, key="manifests/q.yaml")


def test_oversized_object_is_rejected_before_reading(stack: dict[str, Any]) -> None:
    with pytest.raises(ManifestInvalid, match="too large"):
        _invoke(stack, SEED + b"#" * (1024 * 1024), key="manifests/big.yaml")


def test_image_override_derives_the_request_from_the_live_definition(stack: dict[str, Any]) -> None:
    body = SEED.replace(b"job:\n", f"job:\n  image: {IMAGE}\n".encode())
    plan = _invoke(stack, body, key="manifests/img.yaml")
    request = plan["job_definition_request"]
    assert plan["register_job_definition"] is True and plan["warnings"] == []
    assert request["ContainerProperties"]["Image"] == IMAGE
    assert request["ContainerProperties"]["Command"] == ["python", "-m", "training.train"]
    assert request["JobDefinitionName"] == "agesweep-job-aladyn-0-10000" and request["Parameters"] == {"epochs": "200"}
    # the request is accepted by Batch as the state machine's aws-sdk task would send it (snake -> camel)
    registered = boto3.client("batch").register_job_definition(
        jobDefinitionName=request["JobDefinitionName"], type=request["Type"],
        containerProperties={"image": request["ContainerProperties"]["Image"],
                             "resourceRequirements": [{"type": r["Type"], "value": r["Value"]}
                                                      for r in request["ContainerProperties"]["ResourceRequirements"]]},
        parameters=request["Parameters"], timeout={"attemptDurationSeconds": request["Timeout"]["AttemptDurationSeconds"]},
        retryStrategy={"attempts": request["RetryStrategy"]["Attempts"]}, tags=request["Tags"],
    )
    assert registered["jobDefinitionArn"].endswith(":1")
