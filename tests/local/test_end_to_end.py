"""End to end through the real template.yaml + sweep.asl.json on moto, real handlers, real training jobs."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import yaml

from agesweep import tracking
from agesweep.exit_codes import ExitCode
from agesweep.local.cloud import SimulatedFailure, SpotInterruption
from agesweep.local.session import run_manifest
from tests.local.conftest import write_manifest
from training import train


def _state_names(stack, execution_arn: str) -> list[str]:
    events = tracking.history_events(stack.client("stepfunctions"), execution_arn)
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def _all_jobs(stack) -> list[dict]:
    batch = stack.client("batch")
    jobs = []
    for status in tracking.JOB_STATUSES:
        jobs += batch.list_jobs(jobQueue=stack.job_queue_arn, jobStatus=status)["jobSummaryList"]
    return jobs


def test_small_sweep_runs_every_step_of_the_real_state_machine(make_stack, tmp_path: Path, data_dir: Path) -> None:
    stack = make_stack()
    manifest = write_manifest(tmp_path / "e2e.yaml", [50, 51, 52], run_name="e2e")

    result = run_manifest(stack, manifest)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.exit_code == ExitCode.OK
    assert [(row.age, row.status, row.attempts) for row in result.rows] == [
        (50, "SUCCEEDED", 1), (51, "SUCCEEDED", 1), (52, "SUCCEEDED", 1)
    ]
    entered = _state_names(stack, result.execution_arn)
    for state in ("ValidateManifest", "RunAges", "SubmitJob", "CollateResults", "NotifySummary", "SweepSucceeded"):
        assert state in entered
    assert "RegisterJobDefinition" not in entered  # no image override → the stack's definition
    # the jobs ran the real trainer on the local /data, age-stamped, in the run's own folder
    for age in (50, 51, 52):
        folder = data_dir / "output" / result.run_id / f"age_{age}"
        assert (folder / f"pi_enroll_fixedphi_age_{age}_sex_0_240.pt").is_file()
        assert (folder / f"model_enroll_fixedphi_age_{age}_sex_0_240.pt").is_file()
    # small results also landed in the bucket, and collation read them
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["succeeded"] == 3 and summary["failed"] == 0
    assert summary["cost_estimate"]["if_run_on_aws"] is True  # local mode labels every figure
    keys = [o["Key"] for o in stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix=f"runs/{result.run_id}/metrics/")["Contents"]]
    assert len(keys) == 3
    assert {p.name for p in result.artifacts} >= {"summary.json", "summary.csv", "report.html", "retry-manifest.yaml"}
    # one SNS summary for people, naming the run
    summaries = [n for n in result.notifications if result.run_id in n["subject"] or result.run_id in n["message"]]
    assert len(summaries) == 1
    assert "3" in summaries[0]["subject"]
    assert result.history_events < 200


def test_duplicate_object_created_events_start_one_execution(make_stack, tmp_path: Path) -> None:
    stack = make_stack()
    manifest = write_manifest(tmp_path / "dup.yaml", [60], run_name="dup", epochs=1)
    result = run_manifest(stack, manifest)
    assert result.exit_code == ExitCode.OK
    s3 = stack.client("s3")
    head = s3.head_object(Bucket=stack.bucket, Key="manifests/dup.yaml")
    detail = {
        "version": "0",
        "bucket": {"name": stack.bucket},
        "object": {"key": "manifests/dup.yaml", "size": head["ContentLength"], "etag": head["ETag"].strip('"'),
                   "version-id": head["VersionId"], "sequencer": "0"},
        "request-id": "dup", "requester": "123456789012", "source-ip-address": "127.0.0.1", "reason": "PutObject",
    }
    for _ in range(2):  # EventBridge delivers at least once: replay the same event twice
        stack.put_aws_event("aws.s3", "Object Created", [f"arn:aws:s3:::{stack.bucket}"], detail)
    stack.wait_idle()
    executions = stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == [result.run_id]


def test_invalid_manifest_ends_with_a_readable_alert_and_no_job(make_stack, tmp_path: Path) -> None:
    stack = make_stack()
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "schema_version: 1\nages: {from: 20, to: 79}\nslices: [{start_index: 10, end_index: 5}]\n"
        "input: /data/input\noutput: /data/output\nmax_concurency: 4\n",
        encoding="utf-8",
    )

    result = run_manifest(stack, manifest)

    assert result.exit_code == ExitCode.INVALID
    assert result.status == "FAILED" and result.error == "ManifestRejected"
    assert _all_jobs(stack) == []
    assert "RunAges" not in _state_names(stack, result.execution_arn)
    alerts = [n for n in result.notifications if result.run_id in n["message"]]
    assert alerts, result.notifications
    text = alerts[0]["message"]
    assert not text.lstrip().startswith("{")  # readable text, not raw event JSON
    for field_path in ("ages", "slices", "max_concurency"):
        assert field_path in text


def test_failed_age_is_not_retried_and_the_retry_manifest_reruns_only_it(make_stack, tmp_path: Path) -> None:
    stack = make_stack(simulated_failures=[SimulatedFailure(age=51)])
    manifest = write_manifest(tmp_path / "partial.yaml", [50, 51, 52], run_name="partial")

    result = run_manifest(stack, manifest)

    assert result.exit_code == ExitCode.SOME_FAILED
    assert result.status == "FAILED" and result.error == "ToleranceExceeded"
    by_age = {row.age: row for row in result.rows}
    assert by_age[50].status == by_age[52].status == "SUCCEEDED"
    assert by_age[51].status == "FAILED"
    assert by_age[51].attempts == 1  # an application error is not retried (evaluateOnExit → EXIT)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert (summary["succeeded"], summary["failed"]) == (2, 1)
    retry = yaml.safe_load((result.run_dir / "retry-manifest.yaml").read_text())
    assert retry["ages"] == [51]
    # the Batch alert names the run and the age; the summary names the failure
    texts = "\n".join(n["message"] for n in result.notifications)
    assert "51" in texts and result.run_id in texts

    stack.simulated_failures.clear()
    retry_path = tmp_path / "retry" / "retry-manifest.yaml"  # the downloaded file, as it is named
    retry_path.parent.mkdir()
    retry_path.write_text((result.run_dir / "retry-manifest.yaml").read_text(), encoding="utf-8")
    rerun = run_manifest(stack, retry_path)
    assert rerun.exit_code == ExitCode.OK
    assert [(row.age, row.status) for row in rerun.rows] == [(51, "SUCCEEDED")]
    assert rerun.run_id != result.run_id and rerun.run_id.startswith("partial-retry-")  # its run_name, not the file's
    resummary = json.loads((rerun.run_dir / "summary.json").read_text())
    assert resummary["lineage"]["retry_of"] == result.run_id  # the retry's summary links back to the run it retries
    assert f"Retry of run {result.run_id}" in "\n".join(n["message"] for n in rerun.notifications)


def test_spot_interruption_is_retried_by_the_job_definition(make_stack, tmp_path: Path) -> None:
    stack = make_stack(spot_interruptions=[SpotInterruption(age=50)])
    manifest = write_manifest(tmp_path / "spot.yaml", [50], run_name="spot", epochs=1500)

    result = run_manifest(stack, manifest)

    assert result.exit_code == ExitCode.OK, (result.error, result.cause)
    job = stack.client("batch").describe_jobs(jobs=[result.rows[0].job_id])["jobs"][0]
    assert len(job["attempts"]) == 2
    assert job["attempts"][0]["statusReason"].startswith("Host EC2")
    assert job["attempts"][0]["container"]["exitCode"] == 143  # the trainer checkpointed on SIGTERM
    # the second attempt resumed from that checkpoint instead of starting over
    summary = json.loads((result.run_dir / "summary.json").read_text())
    metrics = summary["ages"][0]["slices"][0]["metrics"]
    assert metrics["resumed_from_epoch"] and 0 < metrics["resumed_from_epoch"] < 1500


def test_the_retry_of_a_hard_killed_age_resumes_the_original_runs_checkpoint(make_stack, tmp_path: Path) -> None:
    """Issue item 15: the retry manifest names the run it retries, so an age whose job was killed
    after a checkpoint resumes from it in the retry run (a new run id), through the real job command."""
    stack = make_stack(simulated_failures=[SimulatedFailure(age=51)])
    manifest = write_manifest(tmp_path / "killed.yaml", [50, 51], run_name="killed", epochs=60)
    result = run_manifest(stack, manifest)
    assert result.exit_code == ExitCode.SOME_FAILED, (result.error, result.cause)
    output = stack.data_dir / "output"
    assert not (output / result.run_id / "age_50" / "checkpoint_0_240.pt").exists()  # succeeded: removed
    # what a hard-killed attempt of age 51 leaves: a checkpoint at epoch 40 of 60, no marker
    killed = train.parse_args([
        "--start_index", "0", "--end_index", "240", "--base_data_path", str(stack.data_dir / "input"),
        "--output_dir", str(output), "--age", "51", "--run_id", result.run_id, "--epochs", "60", "--seed", "1",
    ])
    assert train.run(killed, on_epoch=lambda done: done == 40 and signal.raise_signal(signal.SIGTERM)) == 143
    original = output / result.run_id / "age_51"
    before = {p.name: p.stat().st_mtime_ns for p in original.iterdir()}

    retry_text = (result.run_dir / "retry-manifest.yaml").read_text()
    assert yaml.safe_load(retry_text)["resume_from"] == result.run_id
    retry_path = tmp_path / "killed-retry.yaml"
    retry_path.write_text(retry_text, encoding="utf-8")
    stack.simulated_failures.clear()
    rerun = run_manifest(stack, retry_path)
    assert rerun.exit_code == ExitCode.OK, (rerun.error, rerun.cause)
    summary = json.loads((rerun.run_dir / "summary.json").read_text())
    (age,) = summary["ages"]
    metrics = age["slices"][0]["metrics"]
    assert age["age"] == 51 and (metrics["resumed_from_run"], metrics["resumed_from_epoch"]) == (result.run_id, 40)
    assert {p.name: p.stat().st_mtime_ns for p in original.iterdir()} == before  # never written into
