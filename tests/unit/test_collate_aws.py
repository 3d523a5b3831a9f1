"""Collation's AWS reads and writes against moto: real DescribeJobs / ListJobs / S3 answers."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from moto.batch.models import batch_backends

from agesweep import aws as aws_helpers
from agesweep.collation import collate_run, store
from agesweep.contracts import CollateOutput, ItemResult, Plan

EVENTS = Path(__file__).resolve().parents[2] / "events"
ACCOUNT = "123456789012"
REGION = "us-east-1"


def collate_event() -> dict[str, Any]:
    return json.loads((EVENTS / "collate_results.json").read_text())


class MotoBatch:
    """A queue and job definition in moto's Batch (no Docker): submitted jobs finish at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.batch = boto3.client("batch", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        env = self.batch.create_compute_environment(
            computeEnvironmentName="agesweep-spot", type="UNMANAGED", state="ENABLED", serviceRole=role
        )
        self.queue = self.batch.create_job_queue(
            jobQueueName="agesweep-queue", state="ENABLED", priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
        )["jobQueueArn"]
        self.job_definition = self.batch.register_job_definition(
            jobDefinitionName="aladyn-model-job", type="container",
            containerProperties={
                "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/agesweep-trainer:1.4.0",
                "command": ["python", "-m", "training.train", "--age", "Ref::age", "--run_id", "Ref::run_id"],
                "resourceRequirements": [{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "2048"}],
            },
            parameters={"slice_size": "0", "epochs": "200"},
        )["jobDefinitionArn"]

    def submit(self, item: dict[str, Any], *, fail: bool = False, array_size: int = 0,
               reason: str = "Essential container in task exited", exit_code: int = 1) -> str:
        """Submit one plan item; `fail` makes moto's simple backend mark it FAILED (its documented switch)."""
        kwargs: dict[str, Any] = {}
        if array_size:
            kwargs["arrayProperties"] = {"size": array_size}
        if fail:
            self.monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")
        try:
            job_id = self.batch.submit_job(
                jobName=item["job_name"], jobQueue=self.queue, jobDefinition=self.job_definition,
                parameters=item["parameters"], tags=item["tags"], **kwargs,
            )["jobId"]
        finally:
            self.monkeypatch.delenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", raising=False)
        if fail and not array_size:
            self.give_reason(job_id, reason, exit_code)
        return job_id

    @staticmethod
    def give_reason(job_id: str, reason: str, exit_code: int) -> None:
        """moto's simple backend fails jobs without a reason or exit code; give them Batch's."""
        job = batch_backends[ACCOUNT][REGION].get_job_by_id(job_id)
        job.job_stopped_reason = reason
        job.exit_code = exit_code
        job.attempts[-1]["statusReason"] = reason
        job.attempts[-1]["container"]["exitCode"] = exit_code

    @staticmethod
    def fail_child(parent_id: str, index: int, reason: str = "Essential container in task exited") -> None:
        job = batch_backends[ACCOUNT][REGION].get_job_by_id(f"{parent_id}:{index}")
        job.status = "FAILED"
        MotoBatch.give_reason(job.job_id, reason, 137)


def metrics_doc(run_id: str, age: int, start: int, end: int, c_index: float, loss: float) -> dict[str, Any]:
    return {
        "run_id": run_id, "age": age, "start_index": start, "end_index": end, "n_patients": end - start,
        "epochs": 200, "final_loss": loss, "loss_history": [[0, loss * 2], [199, loss]],
        "heldout_c_index": c_index, "wall_time_s": 8.2, "peak_rss_mb": 900, "device": "cpu",
        "resumed_from_epoch": None,
        "lineage": {"run_id": run_id, "job_id": "x", "attempt": 1, "array_index": None,
                    "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/agesweep-trainer:1.4.0",
                    "job_definition": "aladyn-model-job:1", "input": "/data/input", "parameters": {},
                    "torch": "2.13.0", "git_revision": "abc1234"},
    }


ORIGINAL_MANIFEST = """\
# the seed's sweep, narrowed to three ages for the test
schema_version: 1
run_name: aladyn-0-10000
ages: {from: 54, to: 56}
slices:
  - {start_index: 0, end_index: 10000}
input: /data/input
output: /data/output
job:
  vcpus: 32
  memory_mib: 131072
  timeout_minutes: 240
  attempts: 3
max_concurrency: 40
tolerated_failure_percent: 0
training: {epochs: 200, learning_rate: 0.1, seed: 42}
tags: {project: aladyn}
"""


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto with a Batch queue, the stack bucket (versioned) and the run's original manifest in it."""
    with mock_aws(config={"batch": {"use_docker": False}}):
        event = collate_event()
        plan = event["plan"]
        bucket = plan["manifest"]["bucket"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        version = s3.put_object(Bucket=bucket, Key=plan["manifest"]["key"], Body=ORIGINAL_MANIFEST.encode())["VersionId"]
        # A later edit of the manifest must not leak into the retry: collation reads the run's version.
        s3.put_object(Bucket=bucket, Key=plan["manifest"]["key"], Body=ORIGINAL_MANIFEST.replace("seed: 42", "seed: 7").encode())
        plan["manifest"]["version_id"] = version
        yield {"batch": MotoBatch(monkeypatch), "s3": s3, "bucket": bucket, "event": event}


def run_through_moto(aws: dict[str, Any], fail_ages: set[int], with_metrics: bool = True) -> dict[str, Any]:
    """Submit every plan item to moto's Batch and rebuild the Map results the way the ASL records them."""
    event = copy.deepcopy(aws["event"])
    plan = event["plan"]
    mb: MotoBatch = aws["batch"]
    results = []
    for item in plan["items"]:
        failed = item["age"] in fail_ages
        job_id = mb.submit(item, fail=failed)
        if failed:
            desc = mb.batch.describe_jobs(jobs=[job_id])["jobs"][0]
            # Step Functions passes the failed job's description as the Cause, in PascalCase.
            cause = {k[0].upper() + k[1:]: v for k, v in desc.items()}
            results.append({"age": item["age"], "job_name": item["job_name"], "array_size": 0, "status": "FAILED",
                            "error": {"Error": "States.TaskFailed", "Cause": json.dumps(cause)}})
        else:
            results.append({"age": item["age"], "job_name": item["job_name"], "array_size": 0,
                            "status": "SUCCEEDED", "job": {"JobId": job_id, "Status": "SUCCEEDED"}})
            if with_metrics:
                doc = metrics_doc(plan["run_id"], item["age"], 0, 10000, 0.70 + item["age"] / 1000, 12.0 - item["age"] / 100)
                aws["s3"].put_object(Bucket=aws["bucket"], Key=store.metrics_key(plan["run_id"], item["age"], 0, 10000),
                                     Body=json.dumps(doc).encode())
    event["results"] = results
    return event


def collate_dicts(plan: dict[str, Any], results: list[dict[str, Any]], **kwargs: Any) -> CollateOutput:
    """collate_run on the models the handler parses from the state's input."""
    return collate_run(Plan.model_validate(plan), [ItemResult.model_validate(r) for r in results], **kwargs)


def read_text(aws: dict[str, Any], key: str) -> str:
    return aws["s3"].get_object(Bucket=aws["bucket"], Key=key)["Body"].read().decode()


def test_collate_run_writes_four_files_and_names_the_failed_age(aws: dict[str, Any]) -> None:
    event = run_through_moto(aws, fail_ages={55})
    out = collate_dicts(event["plan"], event["results"], bucket=aws["bucket"], log_group="/aws/batch/job", region=REGION)

    run_id = event["plan"]["run_id"]
    assert (out.total, out.succeeded, out.failed, out.within_tolerance) == (3, 2, 1, False)
    assert out.summary_uri == f"s3://{aws['bucket']}/runs/{run_id}/summary.json"
    keys = {o["Key"] for o in aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix=f"runs/{run_id}/")["Contents"]}
    assert {f"runs/{run_id}/{name}" for name in store.OUTPUT_FILES} <= keys

    summary = json.loads(read_text(aws, f"runs/{run_id}/summary.json"))
    by_age = {a["age"]: a for a in summary["ages"]}
    failed = by_age[55]["slices"][0]
    assert failed["status"] == "FAILED"
    assert failed["status_reason"] == "Essential container in task exited"
    assert failed["exit_code"] == 1 and failed["attempts"] == 1
    assert failed["log_stream"].startswith("aladyn-model-job/default/")
    assert failed["log_url"].endswith("log-events/" + failed["log_stream"].replace("/", "$252F"))
    assert by_age[54]["slices"][0]["metrics"]["heldout_c_index"] == pytest.approx(0.754)
    assert by_age[55]["slices"][0]["metrics"] is None
    assert summary["lineage"]["job_definition"].endswith("job-definition/aladyn-model-job:1")
    assert summary["lineage"]["image"].endswith("agesweep-trainer:1.4.0")
    assert summary["lineage"]["manifest"]["sha256"] == event["plan"]["manifest"]["sha256"]

    csv_lines = read_text(aws, f"runs/{run_id}/summary.csv").splitlines()
    assert len(csv_lines) == 4 and csv_lines[0].startswith("run_id,age,start_index")
    assert any(",55,0,10000,FAILED," in line for line in csv_lines)

    retry_text = read_text(aws, f"runs/{run_id}/retry-manifest.yaml")
    retry = yaml.safe_load(retry_text)
    assert retry["ages"] == [55]
    assert retry["slices"] == [{"start_index": 0, "end_index": 10000}]
    assert retry["run_name"] == "aladyn-0-10000-retry"
    assert retry["training"] == {"epochs": 200, "learning_rate": 0.1, "seed": 42}  # the run's version, not the later edit
    assert retry["job"]["vcpus"] == 32 and retry["tags"] == {"project": "aladyn"}
    assert "does not validate" not in retry_text

    html = read_text(aws, f"runs/{run_id}/report.html")
    assert "data:image/png;base64," in html and run_id in html

    assert "1 failed of 3" in out.message and "age 55, slice 0-10000: Essential container in task exited" in out.message


def test_nothing_failed_gives_an_empty_retry_manifest(aws: dict[str, Any]) -> None:
    event = run_through_moto(aws, fail_ages=set())
    out = collate_dicts(event["plan"], event["results"], bucket=aws["bucket"], region=REGION)
    assert (out.succeeded, out.failed, out.within_tolerance) == (3, 0, True)
    assert read_text(aws, f"runs/{event['plan']['run_id']}/retry-manifest.yaml") == ""


def test_retry_manifest_validates_against_the_manifest_model(aws: dict[str, Any]) -> None:
    event = run_through_moto(aws, fail_ages={54, 56})
    collate_dicts(event["plan"], event["results"], bucket=aws["bucket"], region=REGION)
    text = read_text(aws, f"runs/{event['plan']['run_id']}/retry-manifest.yaml")
    from agesweep.manifest import parse_manifest

    manifest = parse_manifest(text.encode(), "retry.yaml")
    assert manifest.age_values() == [54, 56]
    assert manifest.slice_bounds() == [(0, 10000)]


def test_describe_jobs_asks_100_ids_per_call(aws: dict[str, Any]) -> None:
    mb: MotoBatch = aws["batch"]
    item = aws["event"]["plan"]["items"][0]
    ids = [mb.submit(item) for _ in range(130)]
    calls: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        calls.append(len(params["jobs"]))

    mb.batch.meta.events.register("provide-client-params.batch.DescribeJobs", count)
    found = aws_helpers.describe_jobs(mb.batch, ids)
    assert set(found) == set(ids)
    assert calls == [100, 30]
    calls.clear()
    facts = store.read_job_facts(mb.batch, ids)
    assert set(facts) == set(ids) and calls == [100, 30]
    assert {f.job_id for f in facts.values()} == set(ids)


def test_array_children_are_listed_and_each_slice_gets_its_own_status(aws: dict[str, Any]) -> None:
    mb: MotoBatch = aws["batch"]
    plan = copy.deepcopy(aws["event"]["plan"])
    item = plan["items"][0]
    item["array_size"] = 4
    item["parameters"].update(start_index="0", end_index="10000", slice_size="2500")
    item["slices"] = [[0, 2500], [2500, 5000], [5000, 7500], [7500, 10000]]
    plan["items"] = [item]
    parent = mb.submit(item, array_size=4)
    MotoBatch.fail_child(parent, 2, "Host EC2 (instance i-0abc) terminated.")

    children = aws_helpers.array_children(mb.batch, parent, 4)
    assert sorted(c["jobId"] for c in children) == [f"{parent}:{i}" for i in range(4)]
    facts = store.read_child_facts(mb.batch, parent, 4)
    assert sorted((f.array_index, f.status) for f in facts) == [
        (0, "SUCCEEDED"), (1, "SUCCEEDED"), (2, "FAILED"), (3, "SUCCEEDED")]

    results = [{"age": item["age"], "job_name": item["job_name"], "array_size": 4, "status": "FAILED",
                "error": {"Error": "States.TaskFailed", "Cause": json.dumps({"JobId": parent, "Status": "FAILED"})}}]
    out = collate_dicts(plan, results, bucket=aws["bucket"], region=REGION)
    assert (out.total, out.succeeded, out.failed) == (4, 3, 1)
    summary = json.loads(read_text(aws, f"runs/{plan['run_id']}/summary.json"))
    statuses = [(s["start_index"], s["status"], s["exit_code"]) for s in summary["ages"][0]["slices"]]
    assert statuses == [(0, "SUCCEEDED", None), (2500, "SUCCEEDED", None), (5000, "FAILED", 137), (7500, "SUCCEEDED", None)]
    retry = yaml.safe_load(read_text(aws, f"runs/{plan['run_id']}/retry-manifest.yaml"))
    assert retry["ages"] == [item["age"]] and retry["slices"] == [{"start_index": 5000, "end_index": 7500}]


def test_read_metrics_ignores_foreign_keys(aws: dict[str, Any]) -> None:
    s3, bucket = aws["s3"], aws["bucket"]
    prefix = "runs/r-1/"
    s3.put_object(Bucket=bucket, Key=store.metrics_key("r-1", 60, 0, 5), Body=b'{"final_loss": 1.5}')
    s3.put_object(Bucket=bucket, Key=f"{prefix}metrics/age_60/notes.txt", Body=b"hello")
    s3.put_object(Bucket=bucket, Key=f"{prefix}metrics/age_61/metrics_age_61_0_5.json", Body=b"not json")
    found = store.read_metrics(s3, bucket, prefix)
    assert list(found) == [(60, 0, 5)]
    assert found[(60, 0, 5)].model_dump(exclude_unset=True) == {"final_loss": 1.5}
