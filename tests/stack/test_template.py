"""template.yaml against the contracts local mode and the handlers rely on (docs/internals.md)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .conftest import ROOT

INTERNALS = (ROOT / "docs" / "internals.md").read_text()

FUNCTIONS = {
    "StartRunFunction": ("functions/start_run/", {"STATE_MACHINE_ARN"}),
    "ValidateManifestFunction": (
        "functions/validate_manifest/",
        {"BUCKET_NAME", "JOB_QUEUE_ARN", "JOB_DEFINITION_ARN", "AGE_MIN", "AGE_MAX", "ALLOWED_BUCKETS",
         "ALLOWED_JOB_DEFINITIONS", "ALLOWED_SECRET_ARNS", "REQUIRE_IMAGE_DIGEST", "JOB_ROLE_ARN",
         "JOB_EXECUTION_ROLE_ARN", "EFS_FILE_SYSTEM_ID", "EFS_ACCESS_POINT_ID"},
    ),
    "CollateResultsFunction": ("functions/collate_results/", {"BUCKET_NAME", "LOG_GROUP"}),
    "FormatAlertFunction": ("functions/format_alert/", {"TOPIC_ARN", "LOG_GROUP", "ON_DEMAND_JOB_QUEUE_ARN"}),
    "ClassifyFailureFunction": ("functions/classify_failure/", set()),
}
# Invoked asynchronously by EventBridge, so a failed invocation must land somewhere (checkov CKV_AWS_116 is
# skipped globally because the Step Functions-invoked functions never use a DLQ).
ASYNC_FUNCTIONS = {"StartRunFunction", "FormatAlertFunction"}


def internals_section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}.*?\n(.*?)(?=^## )", INTERNALS, re.S | re.M)
    assert match, f"docs/internals.md has no section {title!r}"
    return match.group(1)


def documented_command() -> list[str]:
    block = re.search(r"```\n(.*?)```", internals_section("Batch job definition command"), re.S)
    assert block
    return block.group(1).split()


def documented_default_parameters() -> dict[str, str]:
    sentence = re.search(r"default `Parameters`:(.*?)\.\n", internals_section("Batch job definition command"), re.S)
    assert sentence
    return dict(re.findall(r'`(\w+) "([^"]*)"`', sentence.group(1)))


# --- Lambdas ------------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_function_code_handler_and_env_vars(resources: dict[str, Any], logical_id: str) -> None:
    code_uri, env_names = FUNCTIONS[logical_id]
    props = resources[logical_id]["Properties"]
    assert resources[logical_id]["Type"] == "AWS::Serverless::Function"
    assert props["CodeUri"] == code_uri
    assert props["Handler"] == "app.lambda_handler"
    assert set(props.get("Environment", {}).get("Variables", {})) == env_names


def test_globals_carry_shared_config_and_the_layer(template: dict[str, Any]) -> None:
    function = template["Globals"]["Function"]
    assert function["Runtime"] == "python3.11"
    assert function["Tracing"] == "Active"
    assert function["Layers"] == [{"Ref": "AgesweepLayer"}]
    env = function["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "agesweep"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "agesweep"
    assert "LOG_LEVEL" in env


def test_layer_is_built_by_sam_build_from_the_package(resources: dict[str, Any]) -> None:
    layer = resources["AgesweepLayer"]
    assert layer["Properties"]["ContentUri"] == "agesweep/"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    makefile = ROOT / layer["Metadata"]["ContextPath"] / "Makefile"
    assert re.search(r"^build-AgesweepLayer:", makefile.read_text(), re.M), f"{makefile} lacks build-AgesweepLayer"


@pytest.mark.parametrize("logical_id", sorted(ASYNC_FUNCTIONS))
def test_async_functions_have_a_dead_letter_queue(resources: dict[str, Any], logical_id: str) -> None:
    dlq = resources[logical_id]["Properties"]["DeadLetterQueue"]
    assert dlq == {"Type": "SQS", "TargetArn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}


def test_no_fixed_resource_names(resources: dict[str, Any]) -> None:
    """Two stacks must fit in one account: any explicit name derives from the stack name."""
    for logical_id, resource in resources.items():
        for key, value in resource.get("Properties", {}).items():
            if key.endswith("Name") and key not in {"MetricName", "PolicyName", "DeviceName", "DisplayName"} and isinstance(value, str):
                pytest.fail(f"{logical_id}.{key} is a fixed name: {value!r}")
            if key in {"JobDefinitionName", "LogGroupName"}:
                assert "${AWS::StackName}" in value["Fn::Sub"], f"{logical_id}.{key}"


# --- state machine and rules -----------------------------------------------------------------------


def test_state_machine_definition_and_substitutions(resources: dict[str, Any]) -> None:
    machine = resources["SweepStateMachine"]
    props = machine["Properties"]
    assert machine["Type"] == "AWS::Serverless::StateMachine"
    assert props["DefinitionUri"] == "statemachine/sweep.asl.json"
    assert props["DefinitionSubstitutions"] == {
        "Partition": {"Ref": "AWS::Partition"},
        "ValidateManifestFunctionArn": {"Fn::GetAtt": ["ValidateManifestFunction", "Arn"]},
        "CollateResultsFunctionArn": {"Fn::GetAtt": ["CollateResultsFunction", "Arn"]},
        "ClassifyFailureFunctionArn": {"Fn::GetAtt": ["ClassifyFailureFunction", "Arn"]},
        "OnDemandJobQueueArn": {"Ref": "OnDemandJobQueue"},
        "TopicArn": {"Ref": "NotificationTopic"},
        "BucketName": {"Ref": "ManifestBucket"},
    }
    assert props["Tracing"] == {"Enabled": True}
    assert props["Logging"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"] == {
        "Fn::GetAtt": ["StateMachineLogGroup", "Arn"]
    }


def test_the_distributed_map_runs_the_inline_maps_processor(asl_text: str) -> None:
    """One processor in two Maps: what a point does cannot depend on how many points the run has."""
    asl = json.loads(asl_text)
    inline, distributed = asl["States"]["RunAges"], asl["States"]["RunPointsDistributed"]
    names = set(inline["ItemProcessor"]["States"])

    def renamed(node: Any) -> Any:  # state names are unique across a state machine: Point<name> there
        if isinstance(node, dict):
            return {k: f"Point{v}" if k in ("Next", "Default", "StartAt") and v in names else renamed(v) for k, v in node.items()}
        return [renamed(v) for v in node] if isinstance(node, list) else node

    assert distributed["ItemProcessor"]["States"] == {f"Point{k}": renamed(v) for k, v in inline["ItemProcessor"]["States"].items()}
    assert distributed["ItemProcessor"]["StartAt"] == "Point" + inline["ItemProcessor"]["StartAt"]
    assert distributed["ItemSelector"] == inline["ItemSelector"]
    assert distributed["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert distributed["ItemReader"]["Parameters"] == {"Bucket": "${BucketName}", "Key.$": "$.plan.items_key"}
    assert distributed["ResultPath"] == inline["ResultPath"] == "$.results"
    assert distributed["Next"] == inline["Next"] == "CollateResults"
    choice = asl["States"]["InlineOrDistributed"]
    assert choice["Choices"] == [{"Variable": "$.plan.map_mode", "StringEquals": "DISTRIBUTED", "Next": "RunPointsDistributed"}]


def test_every_asl_substitution_is_provided_and_every_provided_one_is_used(
    asl_text: str, resources: dict[str, Any]
) -> None:
    used = set(re.findall(r"\$\{(\w+)\}", asl_text))
    provided = set(resources["SweepStateMachine"]["Properties"]["DefinitionSubstitutions"])
    assert used - provided == set(), "used in the ASL, missing from DefinitionSubstitutions"
    assert provided - used == set(), "provided by the template, never used in the ASL"


def test_asl_names_no_arn_directly(asl_text: str) -> None:
    assert not re.search(r"arn:aws[-a-z]*:", asl_text), "ASL must reach resources through ${Substitutions}"


def target(rule: dict[str, Any]) -> dict[str, Any]:
    (only,) = rule["Properties"]["Targets"]
    assert only["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}
    assert only["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    return only


def test_manifest_created_rule(resources: dict[str, Any]) -> None:
    rule = resources["ManifestCreatedRule"]
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [{"Ref": "ManifestBucket"}]}, "object": {"key": [{"prefix": "manifests/"}]}},
    }
    assert target(rule)["Arn"] == {"Fn::GetAtt": ["StartRunFunction", "Arn"]}
    assert resources["ManifestBucket"]["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }


def test_alert_rules(resources: dict[str, Any]) -> None:
    failed = resources["ExecutionFailedRule"]
    assert failed["Properties"]["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [{"Ref": "SweepStateMachine"}]},
    }
    job = resources["BatchJobFailedRule"]
    assert job["Properties"]["EventPattern"] == {
        "source": ["aws.batch"],
        "detail-type": ["Batch Job State Change"],
        "detail": {
            "status": ["FAILED"], "jobQueue": [{"Ref": "JobQueue"}, {"Ref": "OnDemandJobQueue"}],
            "arrayProperties": {"index": [{"exists": False}]},
        },
    }
    for rule_id, rule in (("ExecutionFailedRule", failed), ("BatchJobFailedRule", job)):
        assert target(rule)["Arn"] == {"Fn::GetAtt": ["FormatAlertFunction", "Arn"]}
        permission = next(
            r for r in resources.values()
            if r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}
        )
        assert permission["Properties"]["FunctionName"] == {"Ref": "FormatAlertFunction"}


# --- Batch ------------------------------------------------------------------------------------------


def test_job_definition_matches_internals(resources: dict[str, Any]) -> None:
    props = resources["JobDefinition"]["Properties"]
    container = props["ContainerProperties"]
    assert container["Command"] == documented_command()
    assert props["Parameters"] == documented_default_parameters()
    assert props["Type"] == "container"
    assert props["PropagateTags"] is True
    assert props["RetryStrategy"] == {
        "Attempts": 3,
        "EvaluateOnExit": [
            {"OnStatusReason": "Host EC2*", "Action": "RETRY"},
            {"OnReason": "*", "Action": "EXIT"},
        ],
    }
    assert props["Timeout"]["AttemptDurationSeconds"] == {"Ref": "JobTimeoutSeconds"}


def test_job_timeout_parameter_is_at_least_a_minute(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["JobTimeoutSeconds"]
    assert parameter["MinValue"] >= 60 and parameter["Default"] >= 60


def test_job_definition_mounts_efs_through_the_access_point(resources: dict[str, Any]) -> None:
    container = resources["JobDefinition"]["Properties"]["ContainerProperties"]
    (volume,) = container["Volumes"]
    assert volume["EfsVolumeConfiguration"] == {
        "FileSystemId": {"Ref": "FileSystem"},
        "TransitEncryption": "ENABLED",
        "AuthorizationConfig": {"AccessPointId": {"Ref": "AccessPoint"}, "Iam": "ENABLED"},
    }
    assert container["MountPoints"] == [{"SourceVolume": volume["Name"], "ContainerPath": "/data", "ReadOnly": False}]
    env = {e["Name"] for e in container["Environment"]}
    assert "AGESWEEP_IMAGE" in env
    assert not env & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "JobLogGroup"}


def test_compute_environments_and_queue(template: dict[str, Any], resources: dict[str, Any]) -> None:
    spot = resources["SpotComputeEnvironment"]["Properties"]["ComputeResources"]
    assert (spot["Type"], spot["AllocationStrategy"], spot["MinvCpus"]) == ("SPOT", "SPOT_CAPACITY_OPTIMIZED", 0)
    on_demand = resources["OnDemandComputeEnvironment"]["Properties"]["ComputeResources"]
    assert (on_demand["Type"], on_demand["MinvCpus"]) == ("EC2", 0)
    assert spot["InstanceTypes"] == {"Ref": "SpotInstanceTypes"}
    assert len(template["Parameters"]["SpotInstanceTypes"]["Default"].split(",")) >= 3
    order = resources["JobQueue"]["Properties"]["ComputeEnvironmentOrder"]
    assert [o["ComputeEnvironment"] for o in sorted(order, key=lambda o: o["Order"])] == [
        {"Ref": "SpotComputeEnvironment"},
        {"Ref": "OnDemandComputeEnvironment"},
    ]


def test_image_repository_is_immutable_and_scanned(resources: dict[str, Any]) -> None:
    props = resources["ImageRepository"]["Properties"]
    assert props["ImageTagMutability"] == "IMMUTABLE"
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}


def test_bucket_is_locked_down(resources: dict[str, Any]) -> None:
    props = resources["ManifestBucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    (deny,) = resources["ManifestBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- IAM ------------------------------------------------------------------------------------------


def iam_statements(resources: dict[str, Any]):
    """(owner, statement) for every identity policy statement written in the template."""
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        for policy in props.get("Policies", []):
            for candidate in [policy, *policy.get("Fn::If", [None, None, None])[1:]] if isinstance(policy, dict) else []:
                if isinstance(candidate, dict):
                    document = candidate.get("PolicyDocument", candidate)
                    for statement in document.get("Statement", []):
                        yield logical_id, statement


def test_no_wildcard_actions_in_identity_policies(resources: dict[str, Any]) -> None:
    statements = list(iam_statements(resources))
    assert len(statements) >= 15
    for owner, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not [a for a in actions if a == "*" or a.endswith(":*")], f"{owner}: {statement}"


def test_state_machine_role_is_scoped(resources: dict[str, Any]) -> None:
    policies = resources["SweepStateMachine"]["Properties"]["Policies"]
    templates = {next(iter(p)): p[next(iter(p))] for p in policies if "Statement" not in p}
    assert templates["SNSPublishMessagePolicy"] == {"TopicName": {"Fn::GetAtt": ["NotificationTopic", "TopicName"]}}
    statements = {s["Sid"]: s for p in policies if "Statement" in p for s in p["Statement"]}
    assert {"Ref": "JobQueue"} in statements["SubmitAndStopJobs"]["Resource"]
    assert {"Ref": "OnDemandJobQueue"} in statements["SubmitAndStopJobs"]["Resource"]
    assert statements["ManagedRuleForBatchSync"]["Resource"]["Fn::Sub"].endswith(
        ":rule/StepFunctionsGetEventsForBatchJobsRule"
    )
    invoked = [p["LambdaInvokePolicy"]["FunctionName"] for p in policies if "LambdaInvokePolicy" in p]
    assert invoked == [
        {"Ref": "ValidateManifestFunction"}, {"Ref": "CollateResultsFunction"}, {"Ref": "ClassifyFailureFunction"}
    ]


# --- your own jobs: allowed definitions, registered definitions, secrets ----------------------------


def _sids(policies: list[Any]) -> dict[str, dict[str, Any]]:
    """Sid → statement of a resource's policies, the conditional (Fn::If) ones included, with their condition."""
    found: dict[str, dict[str, Any]] = {}
    for policy in policies:
        condition, candidates = (policy["Fn::If"][0], policy["Fn::If"][1:]) if "Fn::If" in policy else (None, [policy])
        for candidate in candidates:
            if isinstance(candidate, dict) and "Ref" not in candidate:
                for statement in candidate.get("PolicyDocument", candidate).get("Statement", []):
                    found[statement["Sid"]] = {**statement, "_if": condition}
    return found


def test_own_job_parameters_default_to_nothing_allowed(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["AllowedJobDefinitions"]["Type"] == "CommaDelimitedList"
    assert parameters["AllowedJobDefinitions"]["Default"] == ""
    assert parameters["AllowedSecretArns"]["Type"] == "CommaDelimitedList"
    assert parameters["AllowedSecretArns"]["Default"] == ""
    assert parameters["RequireImageDigest"]["Default"] == "false"
    assert parameters["RequireImageDigest"]["AllowedValues"] == ["true", "false"]
    env = template["Resources"]["ValidateManifestFunction"]["Properties"]["Environment"]["Variables"]
    assert env["ALLOWED_JOB_DEFINITIONS"] == {"Fn::Join": [",", {"Ref": "AllowedJobDefinitions"}]}
    assert env["ALLOWED_SECRET_ARNS"] == {"Fn::Join": [",", {"Ref": "AllowedSecretArns"}]}
    assert env["REQUIRE_IMAGE_DIGEST"] == {"Ref": "RequireImageDigest"}
    assert env["JOB_ROLE_ARN"] == {"Fn::GetAtt": ["JobRole", "Arn"]}
    assert env["JOB_EXECUTION_ROLE_ARN"] == {"Fn::GetAtt": ["JobExecutionRole", "Arn"]}


def test_allowed_job_definitions_are_submitted_by_name_only_when_listed(resources: dict[str, Any]) -> None:
    statements = _sids(resources["SweepStateMachine"]["Properties"]["Policies"])
    allowed = statements["SubmitAllowedJobDefinitions"]
    assert allowed["_if"] == "HasAllowedJobDefinitions"
    assert allowed["Action"] == "batch:SubmitJob"
    text = repr(allowed["Resource"])
    assert "job-definition/${Joined}:*" in text and "'Ref': 'AllowedJobDefinitions'" in text
    assert allowed["Condition"] == {"StringEquals": {
        "aws:ResourceAccount": {"Ref": "AWS::AccountId"}, "aws:RequestedRegion": {"Ref": "AWS::Region"},
    }}


def test_registered_definitions_are_the_stacks_family_only(resources: dict[str, Any]) -> None:
    statements = _sids(resources["SweepStateMachine"]["Properties"]["Policies"])
    register = statements["RegisterJobDefinitionRevision"]
    subs = [r["Fn::Sub"] for r in register["Resource"]]
    assert [s[s.index("job-definition/"):] for s in subs] == ["job-definition/${AWS::StackName}-train*"]
    submit = [r.get("Fn::Sub", "") for r in statements["SubmitAndStopJobs"]["Resource"] if isinstance(r, dict)]
    assert [s[s.index("job-definition/"):] for s in submit if "job-definition/" in s] == ["job-definition/${AWS::StackName}-train*"]
    passed = statements["PassJobRoles"]
    assert passed["Resource"] == [{"Fn::GetAtt": ["JobRole", "Arn"]}, {"Fn::GetAtt": ["JobExecutionRole", "Arn"]}]
    assert set(passed["Condition"]["StringEquals"]["iam:PassedToService"]) == {
        "batch.amazonaws.com", "ecs-tasks.amazonaws.com"
    }


def test_job_execution_role_reads_exactly_the_allowed_secrets(resources: dict[str, Any]) -> None:
    statements = _sids(resources["JobExecutionRole"]["Properties"]["Policies"])
    secrets = statements["ReadAllowedSecrets"]
    assert secrets["_if"] == "HasAllowedSecretArns"
    assert secrets["Action"] == ["secretsmanager:GetSecretValue", "ssm:GetParameters"]
    assert secrets["Resource"] == {"Ref": "AllowedSecretArns"}


@pytest.mark.parametrize("action", [
    "batch:SubmitJob", "batch:RegisterJobDefinition", "iam:PassRole", "secretsmanager:GetSecretValue", "ssm:GetParameters",
])
def test_own_job_actions_never_name_every_resource(resources: dict[str, Any], action: str) -> None:
    granted = [(owner, s) for owner, s in iam_statements(resources)
               if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert granted, action
    for owner, statement in granted:
        listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in listed, f"{owner}: {statement}"
        assert not any(isinstance(r, str) and r.endswith(":*") and r.count(":") < 6 for r in listed), f"{owner}: {statement}"
