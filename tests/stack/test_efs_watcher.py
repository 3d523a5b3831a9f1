"""template.yaml's EFS watcher: scheduled, in the VPC with the access point mounted read-only, and
allowed to write only its own prefixes of the bucket (README: Starting a run)."""

from __future__ import annotations

from typing import Any

from .conftest import ROOT, load_event

S3_WRITES = {"s3:PutObject", "s3:DeleteObject", "s3:PutObjectAcl", "s3:PutObjectTagging"}


def _statements(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    policies = resources["WatchEfsFunction"]["Properties"]["Policies"]
    assert all("Statement" in p for p in policies), "only explicit statements: no broad SAM policy templates"
    return {s["Sid"]: s for p in policies for s in p["Statement"]}


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return set(action if isinstance(action, list) else [action])


def test_watcher_function_mounts_the_access_point_in_the_vpc(resources: dict[str, Any]) -> None:
    watcher = resources["WatchEfsFunction"]
    props = watcher["Properties"]
    assert props["CodeUri"] == "functions/watch_efs/" and props["Handler"] == "app.lambda_handler"
    assert "Layers" not in props  # the shared AgesweepLayer from Globals only
    assert (ROOT / "functions" / "watch_efs" / "app.py").is_file()
    assert props["FileSystemConfigs"] == [{"Arn": {"Fn::GetAtt": ["AccessPoint", "Arn"]}, "LocalMountPath": "/mnt/data"}]
    env = props["Environment"]["Variables"]
    assert set(env) == {"BUCKET_NAME", "TOPIC_ARN", "WATCH_FOLDER", "DATA_MOUNT"}
    assert env["DATA_MOUNT"] == "/mnt/data" and env["WATCH_FOLDER"] == {"Ref": "EfsManifestFolder"}
    assert props["VpcConfig"] == {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": [{"Ref": "EfsWatcherSecurityGroup"}]}
    assert set(watcher["DependsOn"]) == {"MountTargetA", "MountTargetB"}
    assert props["Timeout"] < 60  # looks a minute apart never overlap


def test_watcher_runs_every_minute_on_a_folder_parameter(template: dict[str, Any], resources: dict[str, Any]) -> None:
    assert template["Parameters"]["EfsManifestFolder"]["Default"] == "/data/manifests/"
    rule = resources["EfsWatchSchedule"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 minute)" and "EventPattern" not in rule
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["WatchEfsFunction", "Arn"]}
    permission = resources["EfsWatchSchedulePermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "WatchEfsFunction"}
    assert permission["SourceArn"] == {"Fn::GetAtt": ["EfsWatchSchedule", "Arn"]}
    assert load_event("efs_watch_scheduled.json")["detail-type"] == "Scheduled Event"


def test_watcher_may_mount_read_only_and_write_only_its_prefixes(resources: dict[str, Any]) -> None:
    statements = _statements(resources)
    mount = statements["MountDataReadOnlyThroughAccessPoint"]
    assert _actions(mount) == {"elasticfilesystem:ClientMount"}  # no ClientWrite
    assert mount["Condition"] == {"StringEquals": {"elasticfilesystem:AccessPointArn": {"Fn::GetAtt": ["AccessPoint", "Arn"]}}}
    writers = {sid: s for sid, s in statements.items() if _actions(s) & S3_WRITES}
    assert {sid: s["Resource"]["Fn::Sub"] for sid, s in writers.items()} == {
        "UploadSettledManifests": "${ManifestBucket.Arn}/manifests/efs/*",
        "WatcherStateAndClaims": "${ManifestBucket.Arn}/efs-watch/*",
    }
    assert statements["AlertUnusableManifests"]["Resource"] == {"Ref": "NotificationTopic"}
    other = set().union(*(_actions(s) for s in statements.values())) - S3_WRITES
    assert other <= {"elasticfilesystem:ClientMount", "s3:GetObject", "s3:ListBucket", "sns:Publish", "kms:GenerateDataKey*", "kms:Decrypt"}


def test_watcher_reaches_efs_through_its_own_security_group(resources: dict[str, Any]) -> None:
    ingress = resources["EfsIngressFromWatcher"]["Properties"]
    assert ingress["GroupId"] == {"Ref": "EfsSecurityGroup"}
    assert ingress["SourceSecurityGroupId"] == {"Ref": "EfsWatcherSecurityGroup"}
    assert (ingress["FromPort"], ingress["ToPort"]) == (2049, 2049)
    endpoint = resources["S3GatewayEndpoint"]
    assert endpoint["Condition"] == "HasS3GatewayRouteTables"
    assert endpoint["Properties"]["VpcEndpointType"] == "Gateway"
