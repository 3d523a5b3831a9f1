"""Pre-flight checks against moto: queue, job definition, ECR image and s3:// locations."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from agesweep.errors import InputMissing, PreflightFailed
from agesweep.manifest import parse_manifest
from agesweep.preflight import JOB_INPUT_FILES, LOCAL_DATA_ENV, Preflight, parse_ecr_image
from training import layout

REGION = "us-east-1"
DIGEST = "sha256:" + "b" * 64


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, str]]:
    """One mocked account for the module: the checks only read it. Fake env comes from conftest."""
    with mock_aws():
        iam, batch = boto3.client("iam", region_name=REGION), boto3.client("batch", region_name=REGION)
        role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        ce = batch.create_compute_environment(
            computeEnvironmentName="agesweep-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
        )["computeEnvironmentArn"]
        order = [{"order": 1, "computeEnvironment": ce}]
        queue = batch.create_job_queue(jobQueueName="agesweep-queue", state="ENABLED", priority=1, computeEnvironmentOrder=order)
        batch.create_job_queue(jobQueueName="paused-queue", state="DISABLED", priority=1, computeEnvironmentOrder=order)
        props = {"image": "img:1", "resourceRequirements": [{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "1024"}]}
        definition = batch.register_job_definition(jobDefinitionName="agesweep-job", type="container", containerProperties=props)
        batch.register_job_definition(jobDefinitionName="old-job", type="container", containerProperties=props)
        batch.deregister_job_definition(jobDefinition="old-job:1")
        ecr = boto3.client("ecr", region_name=REGION)
        ecr.create_repository(repositoryName="aladyn")
        pushed = ecr.put_image(
            repositoryName="aladyn", imageTag="v1",
            imageManifest='{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", '
                          '"config": {"digest": "' + DIGEST + '"}}',
        )["image"]["imageId"]["imageDigest"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="inputs-bucket")
        for name in JOB_INPUT_FILES:
            s3.put_object(Bucket="inputs-bucket", Key=f"aladyn/{name}", Body=b"x")
            if name != layout.G_FILE:
                s3.put_object(Bucket="inputs-bucket", Key=f"partial/{name}", Body=b"x")
        yield {"queue": queue["jobQueueArn"], "definition": definition["jobDefinitionArn"], "digest": pushed,
               "checker": Preflight(batch, ecr, s3)}


def _manifest(extra: str = "") -> object:
    return parse_manifest(f"ages: [40]\nslices: [{{start_index: 0, end_index: 1}}]\n{extra}".encode(), "p.yaml")


def test_everything_present_passes_and_returns_the_definition(aws: dict[str, str]) -> None:
    m = _manifest("input: s3://inputs-bucket/aladyn\njob: {image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/aladyn:v1'}\n")
    description = aws["checker"].check(m, aws["queue"], aws["definition"])
    assert description is not None and description["jobDefinitionArn"] == aws["definition"]


def test_names_and_revisions_resolve(aws: dict[str, str]) -> None:
    checker = aws["checker"]
    assert checker.describe_job_definition("agesweep-job")["revision"] == 1
    assert checker.describe_job_definition("agesweep-job:1")["revision"] == 1
    assert checker.describe_job_definition("agesweep-job:9") is None
    assert checker.check_queue("agesweep-queue") == []


def test_every_failure_is_reported_at_once(aws: dict[str, str]) -> None:
    m = _manifest("job: {queue: paused-queue, definition: 'old-job:1', image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/aladyn:v9'}\n"
                  "input: s3://inputs-bucket/missing\n")
    with pytest.raises(PreflightFailed) as caught:
        aws["checker"].check(m, "paused-queue", "old-job:1")
    assert str(caught.value).splitlines() == [
        "job.queue: job queue 'paused-queue' is DISABLED/VALID (an ENABLED, VALID job queue)",
        "job.definition: job definition 'old-job:1' is INACTIVE (an ACTIVE job definition)",
        "job.image: image '123456789012.dkr.ecr.us-east-1.amazonaws.com/aladyn:v9' not found in ECR (a pushed tag or digest)",
    ] + [f"input: s3://inputs-bucket/missing/{name} is missing (a file the job reads)" for name in JOB_INPUT_FILES]


def test_stack_defaults_are_named_as_such(aws: dict[str, str]) -> None:
    with pytest.raises(PreflightFailed) as caught:
        aws["checker"].check(_manifest(), "no-such-queue", "no-such-job")
    assert str(caught.value).splitlines() == [
        "job.queue (stack default): job queue 'no-such-queue' not found (an existing job queue name or ARN)",
        "job.definition (stack default): job definition 'no-such-job' not found "
        "(an ACTIVE job definition name, name:revision or ARN)",
    ]


def test_missing_inputs_alone_are_input_missing(aws: dict[str, str]) -> None:
    with pytest.raises(InputMissing) as caught:
        aws["checker"].check(_manifest("input: s3://no-such-bucket/x\n"), aws["queue"], aws["definition"])
    assert str(caught.value) == "input: bucket 'no-such-bucket' does not exist (an existing bucket)"


def test_missing_output_bucket_is_a_preflight_failure(aws: dict[str, str]) -> None:
    with pytest.raises(PreflightFailed, match="^output: bucket 'no-out' does not exist"):
        aws["checker"].check(_manifest("output: s3://no-out/o\n"), aws["queue"], aws["definition"])


def test_unknown_repository_and_digest_lookup(aws: dict[str, str]) -> None:
    checker = aws["checker"]
    assert checker.check_image(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/aladyn@{aws['digest']}") == []
    assert checker.check_image(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/aladyn@{DIGEST}") != []
    assert checker.check_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/nope:v1")[0].startswith(
        "job.image: ECR repository 'nope' not found")
    assert checker.check_image("public.ecr.aws/docker/library/python:3.11") == []  # not a private ECR image


def test_from_session_makes_the_three_clients(aws: dict) -> None:
    checker = Preflight.from_session(boto3.session.Session(region_name=REGION))
    assert [c.meta.service_model.service_name for c in (checker.batch, checker.ecr, checker.s3)] == ["batch", "ecr", "s3"]


def test_parse_ecr_image() -> None:
    assert parse_ecr_image("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/aladyn:v1") == {
        "registry": "123456789012", "region": "eu-west-1", "repo": "team/aladyn", "tag": "v1"}
    assert parse_ecr_image("python:3.11") is None


def test_the_job_input_files_are_the_trainers() -> None:
    assert JOB_INPUT_FILES == (*layout.INPUT_FILES, layout.ENROLLMENT_MODEL_FILE)


def test_an_s3_input_without_one_of_the_files_names_it(aws: dict[str, str]) -> None:
    with pytest.raises(InputMissing) as caught:
        aws["checker"].check(_manifest("input: s3://inputs-bucket/partial/\n"), aws["queue"], aws["definition"])
    assert str(caught.value) == "input: s3://inputs-bucket/partial/G_matrix.pt is missing (a file the job reads)"


def _description_with_data_mount() -> dict[str, object]:
    return {"containerProperties": {"mountPoints": [{"containerPath": "/data", "sourceVolume": "efs"}]}}


def test_a_data_input_is_checked_in_the_local_data_folder(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "input").mkdir()
    for name in JOB_INPUT_FILES[1:]:
        (tmp_path / "input" / name).write_bytes(b"x")
    checker = Preflight(None, None, None)
    monkeypatch.setenv(LOCAL_DATA_ENV, str(tmp_path))
    assert checker.check_input("/data/input", _description_with_data_mount()) == (
        [], [f"input: /data/input/{JOB_INPUT_FILES[0]} is missing (local mode: {tmp_path / 'input' / JOB_INPUT_FILES[0]}) "
             "(a file the job reads)"],
    )
    assert checker.check_input("/elsewhere/input", _description_with_data_mount()) == ([], [])  # on no mount
    monkeypatch.delenv(LOCAL_DATA_ENV)
    assert checker.check_input("/data/input", _description_with_data_mount()) == ([], [])  # AWS: the job checks


# --- an existing job definition a manifest names (workload "definition") ----------------------------


def _register(aws: dict[str, str], name: str, command: list[str], parameters: dict[str, str] | None = None) -> None:
    props = {"image": "img:1", "command": command,
             "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]}
    aws["checker"].batch.register_job_definition(
        jobDefinitionName=name, type="container", containerProperties=props, parameters=parameters or {}
    )


def _own(definition: str, extra: str = "", rest: str = "") -> object:
    text = f"axes: {{scene: [a, b]}}\njob: {{definition: {definition}{extra}}}\n{rest}"
    return parse_manifest(text.encode(), "own.yaml")


def test_a_definition_whose_command_matches_passes_without_the_trainers_inputs(aws: dict[str, str]) -> None:
    _register(aws, "scenes", ["run", "--scene", "Ref::scene", "--mode", "Ref::mode", "--out", "Ref::output_folder"],
              {"mode": "fast"})
    m = _own("scenes", ", parameters: {}")
    assert m.workload == "definition"  # type: ignore[attr-defined]
    description = aws["checker"].check(m, aws["queue"], "scenes")  # /data/input holds no trainer files: not checked
    assert description is not None and description["jobDefinitionName"] == "scenes"


def test_a_definition_ref_nobody_supplies_and_names_nobody_uses_are_problems(aws: dict[str, str]) -> None:
    _register(aws, "scenes2", ["run", "--scene", "Ref::scen", "--x", "Ref::thresh"])
    m = parse_manifest(
        b"axes: {scene: [a, b]}\njob: {definition: scenes2, parameters: {threshold: 3}}\n", "own.yaml"
    )
    with pytest.raises(PreflightFailed) as caught:
        aws["checker"].check(m, aws["queue"], "scenes2")
    builtins = "run_id, input, output, output_folder, results_uri"
    assert str(caught.value).splitlines() == [
        f"job.definition: Ref::scen in command[2] of 'scenes2:1' is not supplied (did you mean 'scene'? an axis, "
        f"job.parameters, the definition's parameters, or agesweep's {builtins})",
        f"job.definition: Ref::thresh in command[4] of 'scenes2:1' is not supplied (did you mean 'threshold'? an axis, "
        f"job.parameters, the definition's parameters, or agesweep's {builtins})",
        "axes.scene: 'scene' is not used by the command of 'scenes2:1' (did you mean 'scen'? a Ref:: of its command: "
        "scen, thresh)",
        "job.parameters.threshold: not used by the command of 'scenes2:1' (did you mean 'thresh'? a Ref:: of its "
        "command: scen, thresh)",
    ]


def test_date_window_axes_supply_start_and_end(aws: dict[str, str]) -> None:
    _register(aws, "windows", ["run", "Ref::day_start", "Ref::day_end"])
    m = parse_manifest(
        b"axes: {day: {start: 2024-01-01, end: 2024-01-04, days: 2}}\njob: {definition: windows}\n", "own.yaml"
    )
    assert aws["checker"].check(m, aws["queue"], "windows") is not None


def test_own_job_s3_input_needs_only_its_bucket(aws: dict[str, str]) -> None:
    _register(aws, "reader", ["run", "Ref::scene", "Ref::input"])
    m = _own("reader", rest="input: s3://inputs-bucket/anything\noutput: s3://inputs-bucket/out\n")
    assert aws["checker"].check(m, aws["queue"], "reader") is not None
    m = _own("reader", rest="input: s3://no-such-in/anything\n")
    with pytest.raises(PreflightFailed, match="^input: bucket 'no-such-in' does not exist"):
        aws["checker"].check(m, aws["queue"], "reader")
