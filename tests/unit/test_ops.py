"""agesweep.operations without a stack: stuck-job diagnosis, ETA, EFS paths, error lines, --help, local validation."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from typer.testing import CliRunner

from agesweep import tracking
from agesweep.cli import app
from agesweep.cli.manifest_commands import resource_text, slices_text
from agesweep.cli.options import command_help
from agesweep.cli.output import fmt_duration
from agesweep.contracts import CollateOutput, ContainerOverrides, Plan, ResourceRequirement
from agesweep.exit_codes import ExitCode
from agesweep.operations.deployment import AwsClients
from agesweep.operations.errors import OpsError, explain
from agesweep.operations.executions import Execution
from agesweep.operations.logs import job_id_of, job_streams
from agesweep.operations.status import RunStatus, eta_seconds
from agesweep.operations.stuck_jobs import ComputeEnvironment, requested_resources, runnable_since, stuck_causes
from agesweep.operations.submit import efs_local_path, plan_locally, read_manifest
from agesweep.tracking import AgeProgress

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "unit" / "invalid_manifests"
DEMO = ROOT / "events" / "manifests" / "demo.yaml"
# No credentials anywhere: the first AWS call fails at once with NoCredentialsError (never retried,
# nothing sent), which also shows whether a command got as far as calling AWS.
OFFLINE = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
           "AWS_SECURITY_TOKEN": None, "AWS_PROFILE": None}


def _ce(**overrides: Any) -> ComputeEnvironment:
    ce: dict[str, Any] = {"name": "spot", "type": "MANAGED", "state": "ENABLED", "status": "VALID", "status_reason": None,
                          "capacity": "EC2", "min_vcpus": 0, "desired_vcpus": 0, "max_vcpus": 256, "instance_types": ["m6i.8xlarge"]}
    ce.update(overrides)
    return ComputeEnvironment(**ce)


def test_a_job_bigger_than_max_vcpus_is_named_as_the_cause() -> None:
    causes = stuck_causes(32, 131072, [_ce(max_vcpus=16)], {}, {})
    assert "asks 32 vCPUs but spot allows at most maxvCpus 16" in causes[0]


def test_disabled_or_invalid_compute_environments_come_first() -> None:
    causes = stuck_causes(4, None, [_ce(state="DISABLED", status="INVALID", status_reason="CLIENT_ERROR - role")], {}, {})
    assert causes[0].startswith("compute environment spot is DISABLED")
    assert "INVALID: CLIENT_ERROR - role" in causes[1]


def test_instance_types_too_small_and_a_low_quota_are_reported() -> None:
    causes = stuck_causes(
        32, 131072, [_ce(instance_types=["c5.large"])], {"c5.large": (2, 4096)}, {"L-34B43A08": 16.0}
    )
    text = "\n".join(causes)
    assert "no instance type of spot (c5.large) has 32 vCPUs" in text
    assert "no instance type of spot has 131072 MiB" in text
    assert "EC2 quota L-34B43A08" in text and "16 vCPUs, below the job's 32" in text


def test_a_healthy_environment_gets_capacity_and_quota_hints_only() -> None:
    at_max = stuck_causes(32, None, [_ce(desired_vcpus=256)], {}, {})
    assert any("spot is at maxvCpus (256)" in c for c in at_max)
    healthy = stuck_causes(32, None, [_ce()], {"m6i.8xlarge": (32, 131072)}, {})
    assert not any("maxvCpus" in c or "no instance type" in c for c in healthy)
    assert any("L-34B43A08" in c and "L-1216C47A" in c for c in healthy)  # where to look, by code
    assert stuck_causes(4, None, [], {}, {}) == ["the job queue has no compute environment"]


def _row(age: int, status: str, started: float | None = None, stopped: float | None = None) -> AgeProgress:
    return AgeProgress(age=age, job_name=f"a-{age}", array_size=0, status=status, started_at=started, stopped_at=stopped)


def test_eta_is_mean_duration_times_rounds_left() -> None:
    rows = [_row(40, "SUCCEEDED", 0, 10), _row(41, "FAILED", 0, 20)] + [_row(a, "RUNNABLE") for a in range(42, 46)]
    assert eta_seconds(rows, concurrency=2) == 15 * 2  # 4 left, 2 at once: 2 rounds of 15 s
    assert eta_seconds(rows, concurrency=40) == 15
    assert eta_seconds([_row(40, "RUNNING", 0)], concurrency=2) is None  # nothing finished yet
    assert eta_seconds([_row(40, "SUCCEEDED", 0, 5)], concurrency=2) == 0.0


def test_efs_paths_map_onto_the_local_mount() -> None:
    assert efs_local_path("/data/manifests/x.yaml", Path("/mnt/efs")) == Path("/mnt/efs/manifests/x.yaml")
    for bad in ("/etc/passwd", "manifests/x.yaml", "/data/../etc/x.yaml", "/database/x.yaml"):
        with pytest.raises(OpsError, match="under /data/"):
            efs_local_path(bad, Path("/mnt/efs"))


def test_job_streams_follow_the_attempts() -> None:
    job = {"attempts": [{"container": {"logStreamName": "jd/default/a"}}, {"container": {"logStreamName": "jd/default/b"}}],
           "container": {"logStreamName": "jd/default/b"}}
    assert job_streams(job) == [(1, "jd/default/a"), (2, "jd/default/b")]
    assert job_streams({"attempts": [], "container": {"logStreamName": "s"}}) == [(1, "s")]
    assert job_streams({"status": "RUNNABLE"}) == []


def test_errors_read_as_one_actionable_line() -> None:
    assert "no AWS credentials found" in explain(NoCredentialsError())
    expired = ClientError({"Error": {"Code": "ExpiredTokenException", "Message": "expired"}}, "DescribeStacks")
    assert "rejected the credentials" in explain(expired) and "aws sso login" in explain(expired)
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no batch:TerminateJob"}}, "TerminateJob")
    assert explain(denied) == "access denied (TerminateJob): no batch:TerminateJob"


def test_every_client_retries_throttling_adaptively() -> None:
    client = AwsClients("us-east-1").client("batch")
    assert client.meta.config.retries["mode"] == "adaptive"
    assert client.meta.config.retries["total_max_attempts"] == 11  # the first try and 10 retries


def test_missing_credentials_and_region_exit_2_with_one_line() -> None:
    runner = CliRunner()
    no_credentials = runner.invoke(app, ["runs", "--stack", "s"], env=OFFLINE)
    assert no_credentials.exit_code == 2
    assert no_credentials.stderr.strip().splitlines() == [
        "error: no AWS credentials found: set AWS_PROFILE (and run `aws sso login`), or export "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    ]
    no_region = runner.invoke(app, ["status", "r", "--stack", "s"], env={**OFFLINE, "AWS_DEFAULT_REGION": None, "AWS_REGION": None})
    assert no_region.exit_code == 2
    assert no_region.stderr.strip() == "error: no AWS region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION"


def test_submit_validates_locally_before_any_aws_call() -> None:
    result = CliRunner().invoke(app, ["submit", str(CORPUS / "ages_out_of_bounds.yaml"), "--stack", "s"], env=OFFLINE)
    assert result.exit_code == 2
    assert "ManifestInvalid" in result.stderr and "ages" in result.stderr
    assert "credentials" not in result.output  # it never got to AWS
    neither = CliRunner().invoke(app, ["submit", "--stack", "s"], env=OFFLINE)
    assert neither.exit_code == 2 and "give a MANIFEST file or --efs PATH" in neither.stderr
    valid = CliRunner().invoke(app, ["submit", str(DEMO), "--stack", "s"], env=OFFLINE)
    assert valid.exit_code == 2 and "no AWS credentials found" in valid.stderr  # valid: went on to AWS


@pytest.mark.parametrize("command", ["submit", "status", "watch", "runs", "retry", "cancel", "logs"])
def test_help_reads_like_documentation(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Exit codes" in result.stdout and "--stack" in result.stdout and "AGESWEEP_STACK" in result.stdout


# ------------------------------------------------------------------ pure helpers of the split modules
def _demo_plan() -> Plan:
    return plan_locally(DEMO.read_bytes(), DEMO.name)


def test_the_plan_and_collate_output_are_read_back_from_the_history_as_models() -> None:
    plan = _demo_plan()
    collated = {"run_id": plan.run_id, "total": 2, "succeeded": 1, "failed": 1, "within_tolerance": False,
                "subject": "s", "message": "m", "summary_uri": "s3://b/s", "report_uri": "s3://b/r", "retry_manifest_uri": "s3://b/y"}
    events = [
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "ValidateManifest"}},
        {"type": "TaskStateExited",
         "stateExitedEventDetails": {"name": "ValidateManifest", "output": json.dumps({"plan": plan.to_state()})}},
        {"type": "TaskStateExited", "stateExitedEventDetails": {
            "name": "CollateResults", "output": json.dumps({"plan": plan.to_state(), "collation": {"collated": collated}})}},
    ]
    assert tracking.plan_from_history(events) == plan
    read = tracking.collated_from_history(events)
    assert read is not None and (read.succeeded, read.failed) == (1, 1) and read.model_dump() == collated
    assert tracking.plan_from_history(events[:1]) is None and tracking.collated_from_history(events[:2]) is None


def test_age_rows_come_from_plan_items_and_the_newest_job() -> None:
    plan = _demo_plan()
    first, second = plan.items[0], plan.items[1]
    old = {"jobName": first.job_name, "jobId": "old", "status": "FAILED", "createdAt": 1000}
    new = {"jobName": first.job_name, "jobId": "new", "status": "RUNNING", "createdAt": 2000, "startedAt": 3000,
           "attempts": [{}], "container": {"logStreamName": "jd/default/x"}}
    rows = tracking.age_progress(plan, [new, old])
    assert len(rows) == len(plan.items)
    assert (rows[0].age, rows[0].job_id, rows[0].status, rows[0].attempts, rows[0].started_at, rows[0].log_stream) == (
        first.age, "new", "RUNNING", 1, 3.0, "jd/default/x")
    assert (rows[1].age, rows[1].status, rows[1].job_id) == (second.age, "NOT SUBMITTED", None)
    array = tracking.AgeProgress.of(first.model_copy(update={"array_size": 4}), {
        **new, "arrayProperties": {"statusSummary": {"RUNNING": 1, "SUCCEEDED": 3, "FAILED": 0}}})
    assert array.array_size == 4 and array.children == {"RUNNING": 1, "SUCCEEDED": 3}


def test_a_job_asks_the_plans_override_first_then_what_batch_reports() -> None:
    item = _demo_plan().items[0].model_copy(update={"container_overrides": ContainerOverrides(
        ResourceRequirements=[ResourceRequirement(Type="VCPU", Value="8"), ResourceRequirement(Type="MEMORY", Value="30000")])})
    job = {"container": {"resourceRequirements": [{"type": "VCPU", "value": "32"}, {"type": "MEMORY", "value": "131072"}]}}
    assert requested_resources(item, job) == (8.0, 30000)
    assert requested_resources(None, job) == (32.0, 131072)
    assert requested_resources(None, {"container": {"vcpus": 2, "memory": 2048}}) == (2, 2048)
    assert requested_resources(None, {}) == (None, None)


def test_a_job_is_runnable_since_its_creation_or_its_last_attempts_end() -> None:
    assert runnable_since({"createdAt": 1000}) == 1.0
    assert runnable_since({"createdAt": 1000, "attempts": [{"stoppedAt": 5000}, {"stoppedAt": 9000}]}) == 9.0
    assert runnable_since({}) is None


def test_compute_environments_are_read_from_batchs_description() -> None:
    arn = "arn:aws:batch:us-east-1:1:compute-environment/spot"
    ce = ComputeEnvironment.of(arn, {
        "computeEnvironmentName": "spot", "type": "MANAGED", "state": "ENABLED", "status": "VALID",
        "computeResources": {"type": "SPOT", "allocationStrategy": "SPOT_CAPACITY_OPTIMIZED", "minvCpus": 0,
                             "desiredvCpus": 4, "maxvCpus": 256, "instanceTypes": ["m6i"]}})
    assert (ce.name, ce.capacity, ce.max_vcpus, ce.instance_types, ce.managed) == ("spot", "SPOT", 256, ["m6i"], True)
    bare = ComputeEnvironment.of(arn, {"computeEnvironmentArn": arn})
    assert (bare.name, bare.type, bare.instance_types, bare.managed) == ("spot", None, [], False)
    assert any("spot is SPOT: spot capacity for m6i may be short" in c for c in stuck_causes(4, None, [ce], {}, {}))


def _submitted(age: int, job_id: str, array_size: int = 0) -> tracking.AgeProgress:
    return tracking.AgeProgress(age=age, job_name=f"a-{age}-{job_id}", array_size=array_size, status="RUNNING", job_id=job_id)


def test_logs_pick_the_job_of_a_slice_or_an_array_child() -> None:
    assert job_id_of([_submitted(50, "j1")], 50, None) == "j1"
    assert job_id_of([_submitted(50, "j1"), _submitted(50, "j2")], 50, 1) == "j2"
    with pytest.raises(OpsError, match="age 50 has 2 jobs .one per slice.: pass --index 0..1"):
        job_id_of([_submitted(50, "j1"), _submitted(50, "j2")], 50, None)
    assert job_id_of([_submitted(50, "arr", array_size=3)], 50, 2) == "arr:2"
    with pytest.raises(OpsError, match="array job of 3 slices: pass --index 0..2"):
        job_id_of([_submitted(50, "arr", array_size=3)], 50, None)
    with pytest.raises(OpsError, match="--index 3: age 50 has array indexes 0..2"):
        job_id_of([_submitted(50, "arr", array_size=3)], 50, 3)


def test_an_execution_is_read_from_describe_execution() -> None:
    started = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    execution = Execution.of({"name": "r", "executionArn": "arn:x:r", "status": "FAILED", "startDate": started,
                              "error": "ToleranceExceeded"})
    assert (execution.run_id, execution.arn, execution.started_at, execution.stopped_at) == ("r", "arn:x:r", started.timestamp(), None)
    assert (execution.error, execution.cause, execution.running) == ("ToleranceExceeded", None, False)


def _status(status: str, counts: dict[str, int], collated: CollateOutput | None = None) -> RunStatus:
    return RunStatus(run_id="r", execution_arn="arn:x:r", status=status, started_at=0.0, stopped_at=10.0, error=None,
                     cause=None, region="us-east-1", log_group="/aws/batch/job", max_concurrency=2, rows=[],
                     counts=counts, eta_s=None, collated=collated)


def test_run_status_exit_codes_and_json() -> None:
    failed = CollateOutput(run_id="r", total=2, succeeded=1, failed=1, within_tolerance=True, subject="s", message="m",
                           summary_uri="s3://b/s", report_uri="s3://b/r", retry_manifest_uri="s3://b/y")
    assert _status("RUNNING", {"RUNNING": 1}).exit_code == ExitCode.RUNNING
    assert _status("SUCCEEDED", {"SUCCEEDED": 2}).exit_code == ExitCode.OK
    assert _status("SUCCEEDED", {"SUCCEEDED": 2}, failed).exit_code == ExitCode.SOME_FAILED  # a slice failed
    assert _status("SUCCEEDED", {"FAILED": 1}).exit_code == ExitCode.SOME_FAILED
    assert _status("ABORTED", {}).exit_code == ExitCode.SOME_FAILED
    report = json.loads(json.dumps(_status("SUCCEEDED", {"SUCCEEDED": 2}, failed).to_dict()))
    assert report["exit_code"] == 1 and report["elapsed_s"] == 10.0 and report["collated"]["failed"] == 1


def test_plan_table_cells_and_help_paragraphs() -> None:
    item = _demo_plan().items[0]
    assert slices_text(item.model_copy(update={"array_size": 4, "start_index": 0, "end_index": 100, "slice_size": 25})) == "0..100 by 25"
    assert slices_text(item.model_copy(update={"array_size": 0, "slice_size": 0, "slices": [(0, 5), (5, 9)]})) == "0..5, 5..9"
    overrides = ContainerOverrides(ResourceRequirements=[ResourceRequirement(Type="VCPU", Value="4")])
    with_vcpus = item.model_copy(update={"container_overrides": overrides})
    assert resource_text(with_vcpus, "VCPU", "1*") == "4" and resource_text(with_vcpus, "MEMORY", "2048*") == "2048*"

    def documented() -> None:
        """First line
        goes on.

        Exit codes: 0."""

    assert command_help(documented) == "First line goes on.\n\nExit codes: 0."


def test_durations_and_unreadable_manifests() -> None:
    assert [fmt_duration(s) for s in (None, 12, 245, 7380)] == ["-", "12s", "4m05s", "2h03m"]
    with pytest.raises(OpsError, match="manifest: cannot read .*nope.yaml"):
        read_manifest(Path("/nonexistent/nope.yaml"))
