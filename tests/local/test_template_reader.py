"""Local mode reads template.yaml itself: check it sees the stack `sam deploy` would create."""

from __future__ import annotations

import json
import re
from pathlib import Path

from agesweep.aws import camel_case
from agesweep.local.template import Pseudo, Resolver, load_template, read_stack

ROOT = Path(__file__).resolve().parents[2]


def _spec():
    return read_stack(ROOT, lambda t: Resolver(t, Pseudo(), lambda lid: f"phys:{lid}", lambda lid, attr: f"{lid}.{attr}"))


def test_every_function_has_its_handler_on_disk() -> None:
    spec = _spec()
    assert set(spec.functions) >= {"StartRunFunction", "ValidateManifestFunction", "CollateResultsFunction", "FormatAlertFunction"}
    for fn in spec.functions.values():
        module, _, attribute = fn.handler.rpartition(".")
        source = (fn.code_dir / f"{module}.py").read_text()
        assert re.search(rf"^def {attribute}\(", source, re.M), fn.logical_id


def test_state_machine_definition_is_fully_substituted() -> None:
    spec = _spec()
    assert "${" not in spec.definition
    definition = json.loads(spec.definition)
    assert definition["StartAt"] == "ValidateManifest"
    assert "ValidateManifestFunction.Arn" in spec.definition and "CollateResultsFunction.Arn" in spec.definition


def test_job_definition_command_is_the_trainer_with_every_ref_parameter() -> None:
    spec = _spec()
    command = spec.job_definition.container_properties["Command"]
    assert command[:3] == ["python", "-m", "training.train"]
    refs = {part.removeprefix("Ref::") for part in command if part.startswith("Ref::")}
    assert {"start_index", "end_index", "age", "run_id", "input", "output"} <= refs
    # every Ref:: without a default must be supplied by the planner for each job
    assert refs - set(spec.job_definition.parameters) <= {"start_index", "end_index", "age", "run_id"}


def test_intrinsics_resolve_like_cloudformation() -> None:
    template = {
        "Parameters": {"Env": {"Default": "dev"}},
        "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}},
        "Resources": {},
    }
    resolver = Resolver(template, Pseudo(region="eu-west-1"), lambda lid: f"id-{lid}", lambda lid, attr: f"{lid}/{attr}")
    assert resolver.resolve({"Fn::Sub": "${AWS::Region}-${Env}-${Bucket.Arn}"}) == "eu-west-1-dev-Bucket/Arn"
    assert resolver.resolve({"Fn::If": ["IsProd", "a", "b"]}) == "b"
    assert resolver.resolve({"K": {"Fn::If": ["IsProd", "a", {"Ref": "AWS::NoValue"}]}}) == {}
    assert resolver.resolve({"Fn::Join": ["-", [{"Ref": "Queue"}, "x"]]}) == "id-Queue-x"
    assert load_template(ROOT / "template.yaml")["Resources"]


def test_list_parameters_are_lists_and_overrides_reach_the_validate_function() -> None:
    template = {"Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": ""}}, "Resources": {}}
    resolver = Resolver(template, Pseudo(), lambda lid: lid, lambda lid, attr: attr, {"Names": "a,b"})
    assert resolver.resolve({"Ref": "Names"}) == ["a", "b"]
    assert resolver.resolve({"Fn::Join": [",", {"Ref": "Names"}]}) == "a,b"
    assert Resolver(template, Pseudo(), lambda lid: lid, lambda lid, attr: attr).resolve(
        {"Fn::Join": ["", {"Ref": "Names"}]}) == ""
    secrets = "arn:aws:ssm:us-east-1:123456789012:parameter/a,arn:aws:ssm:us-east-1:123456789012:parameter/b"
    spec = read_stack(ROOT, lambda t: Resolver(t, Pseudo(), lambda lid: f"phys:{lid}", lambda lid, attr: f"{lid}.{attr}",
                                               {"AllowedSecretArns": secrets, "RequireImageDigest": "true"}))
    env = spec.functions["ValidateManifestFunction"].environment
    assert env["ALLOWED_SECRET_ARNS"] == secrets and env["ALLOWED_JOB_DEFINITIONS"] == ""
    assert env["REQUIRE_IMAGE_DIGEST"] == "true"
    assert env["JOB_ROLE_ARN"] == "JobRole.Arn" and env["JOB_EXECUTION_ROLE_ARN"] == "JobExecutionRole.Arn"
    assert env["EFS_FILE_SYSTEM_ID"] == "phys:FileSystem" and env["EFS_ACCESS_POINT_ID"] == "phys:AccessPoint"


def test_job_definition_is_recased_for_the_batch_api_with_user_map_keys_kept() -> None:
    """Local mode registers the template's job definition through the Batch API (camelCase);
    user maps (awslogs Options, Parameters, Tags) keep their keys, as CloudFormation does."""
    spec = _spec()
    container = camel_case(spec.job_definition.container_properties)
    assert container["command"] == spec.job_definition.container_properties["Command"]
    assert container["mountPoints"][0]["containerPath"] == "/data"
    assert {key for item in container["environment"] for key in item} == {"name", "value"}
    assert set(container["logConfiguration"]["options"]) == {"awslogs-group", "awslogs-region", "awslogs-stream-prefix"}
    assert "transitEncryption" in container["volumes"][0]["efsVolumeConfiguration"]
    assert camel_case(spec.job_definition.retry_strategy) == {
        "attempts": 3,
        "evaluateOnExit": [{"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}],
    }
    assert camel_case({"Parameters": {"Age": "1"}, "Tags": {"Team": "x"}, "Options": {"Key": "v"}}) == {
        "parameters": {"Age": "1"}, "tags": {"Team": "x"}, "options": {"Key": "v"},
    }
