"""agesweep.operations without a stack: stuck-job diagnosis, ETA, EFS paths, error lines, --help, local validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from typer.testing import CliRunner

from agesweep.cli import app
from agesweep.operations.deployment import AwsClients
from agesweep.operations.errors import OpsError, explain
from agesweep.operations.logs import job_streams
from agesweep.operations.status import eta_seconds
from agesweep.operations.stuck_jobs import ComputeEnvironment, stuck_causes
from agesweep.operations.submit import efs_local_path
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
