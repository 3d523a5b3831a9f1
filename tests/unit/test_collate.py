"""Collation's pure functions on the contracts' models, built from the sample collate input
(events/collate_results.json)."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from agesweep.collation import join, render, retry, store
from agesweep.collation.facts import JobFacts
from agesweep.contracts import ItemResult, JobMetrics, Plan, PlanItem, Summary
from agesweep.links import log_url
from agesweep.text import format_ages, format_cost, format_duration

EVENTS = Path(__file__).resolve().parents[2] / "events"
RUN_ID = "aladyn-0-10000-3f2a9c1b7e4d"


def sample() -> dict[str, Any]:
    return json.loads((EVENTS / "collate_results.json").read_text())


def collate_dicts(
    plan: dict[str, Any], results: list[dict[str, Any] | None], jobs: dict[str, dict[str, Any]],
    children: dict[str, list[dict[str, Any]]], metrics: dict[tuple[int, int, int], dict[str, Any]], **kwargs: Any,
) -> Summary:
    """collate() on the models built from plain fixtures: job descriptions become JobFacts."""
    return join.collate(
        Plan.model_validate(plan),
        [None if r is None else ItemResult.model_validate(r) for r in results],
        {job_id: JobFacts.of(desc) for job_id, desc in jobs.items()},
        {job_id: [JobFacts.of(c) for c in kids] for job_id, kids in children.items()},
        {key: JobMetrics.model_validate(doc) for key, doc in metrics.items()},
        **kwargs,
    )


def metrics_for(ages: list[int], start: int = 0, end: int = 10000) -> dict[tuple[int, int, int], dict[str, Any]]:
    return {(a, start, end): {"final_loss": 10.0 + a / 10, "heldout_c_index": 0.6 + a / 1000, "n_patients": end - start,
                              "epochs": 200, "lineage": {"image": "repo/trainer:1.4.0", "git_revision": "abc1234"}}
            for a in ages}


def test_console_log_link_uses_the_consoles_double_encoding() -> None:
    assert log_url("/aws/batch/job", "aladyn-model-job/default/0f5e", "eu-west-1") == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/"
        "$252Faws$252Fbatch$252Fjob/log-events/aladyn-model-job$252Fdefault$252F0f5e"
    )
    assert log_url("/aws/batch/job", None, "eu-west-1") is None


def test_failed_job_facts_come_from_the_pascal_case_cause() -> None:
    failed = ItemResult.model_validate(sample()["results"][1])
    desc = failed.cause_job()
    assert desc is not None
    facts = JobFacts.of(desc)
    assert facts.job_id == "8e2d4f6a-1b3c-4d5e-9f7a-0b2c4d6e8f1a"
    assert (facts.status, facts.exit_code, facts.attempts, facts.duration_s) == ("FAILED", 1, 1, 66.0)
    assert facts.status_reason == "Essential container in task exited"
    assert facts.log_stream == "agesweep-dev-aladyn-model-job/default/0f5e3d1c7b9a4e2d8c6b0a1f3e5d7c9b"
    assert desc["parameters"]["start_index"] == "0"  # user maps keep their keys
    api_failure = ItemResult(age=55, job_name="j", array_size=0, status="FAILED",
                             error={"Error": "Batch.ClientException", "Cause": "Job queue does not exist"})
    assert api_failure.cause_job() is None


def test_collate_counts_pairs_and_applies_the_tolerance() -> None:
    event = sample()
    summary = collate_dicts(event["plan"], event["results"], {}, {}, metrics_for([54, 56]), region="us-east-1")
    assert (summary.total, summary.succeeded, summary.failed) == (3, 2, 1)
    assert summary.failed_ages == [55] and not summary.within_tolerance
    assert summary.failures[0].reason == "Essential container in task exited" and summary.failures[0].exit_code == 1
    assert summary.ages[0].slices[0].metrics.heldout_c_index == pytest.approx(0.654)
    assert summary.lineage.image.endswith("agesweep-dev-trainer:1.4.0")  # from the failed job's description
    assert summary.lineage.parameters == {"input": "/data/input", "output": "/data/output",
                                             "results_uri": event["plan"]["results_uri"], "epochs": "200",
                                             "learning_rate": "0.1", "seed": "42"}
    assert summary.notes == []

    event["plan"]["tolerated_failure_percent"] = 34.0
    assert collate_dicts(event["plan"], event["results"], {}, {}, {}).within_tolerance
    event["plan"]["tolerated_failure_percent"] = 33.0
    assert not collate_dicts(event["plan"], event["results"], {}, {}, {}).within_tolerance


def test_api_failure_and_missing_result_are_failures_with_reasons() -> None:
    event = sample()
    event["results"][1] = {"age": 55, "job_name": "aladyn-0-10000-age-55", "array_size": 0, "status": "FAILED",
                           "error": {"Error": "Batch.ClientException",
                                     "Cause": "JobQueue agesweep-q not found (Service: Batch, Status Code: 400)"}}
    del event["results"][2]
    summary = collate_dicts(event["plan"], event["results"], {}, {}, {})
    by_age = {f.age: f for f in summary.failures}
    assert by_age[55].status == "NOT_SUBMITTED"
    assert by_age[55].reason == "Batch.ClientException: JobQueue agesweep-q not found (Service: Batch, Status Code: 400)"
    assert by_age[56].status == "MISSING" and "no result" in by_age[56].reason
    assert summary.failed == 2


def test_job_descriptions_override_the_iteration_summary() -> None:
    event = sample()
    job_id = event["results"][0]["job"]["JobId"]
    described = {job_id: {"jobId": job_id, "status": "SUCCEEDED", "createdAt": 1_000, "startedAt": 2_000, "stoppedAt": 62_000,
                          "attempts": [{"container": {"logStreamName": "s/1", "exitCode": 0}, "startedAt": 2_000, "stoppedAt": 62_000}],
                          "container": {"exitCode": 0, "logStreamName": "s/1"}, "jobDefinition": "arn:jd:7"}}
    summary = collate_dicts(event["plan"], event["results"], described, {}, {})
    first = summary.ages[0].slices[0]
    assert (first.duration_s, first.exit_code, first.attempts, first.log_stream) == (60.0, 0, 1, "s/1")
    assert summary.started_at == "1970-01-01T00:00:01Z"  # earliest createdAt of any job
    assert summary.notes == ["age 54 slice 0-10000: succeeded but no metrics JSON was found",
                             "age 56 slice 0-10000: succeeded but no metrics JSON was found"]


def test_array_item_slices_follow_the_index_contract() -> None:
    template = sample()["plan"]["items"][0]

    def item(**fields: Any) -> PlanItem:
        return PlanItem.model_validate({**template, **fields})

    assert item(array_size=3, start_index=100, end_index=350, slice_size=100, slices=None).slice_spans() == [
        (100, 200), (200, 300), (300, 350)]
    assert item(array_size=0, slice_size=0, slices=[[5, 9]]).slice_spans() == [(5, 9)]
    # The planner's array items carry slices: None and the bounds at the top level too.
    planned = item(array_size=2, start_index=0, end_index=150, slice_size=100, slices=None)
    assert planned.slice_spans() == [(0, 100), (100, 150)]


def test_metrics_keys_round_trip() -> None:
    key = store.metrics_key(RUN_ID, 55, 0, 10000)
    assert key == f"runs/{RUN_ID}/metrics/age_55/metrics_age_55_0_10000.json"
    assert store.parse_metrics_key(key) == (55, 0, 10000)
    assert store.parse_metrics_key(f"runs/{RUN_ID}/metrics/age_55/metrics_age_56_0_10000.json") is None


def test_csv_has_one_row_per_pair_with_metrics_columns() -> None:
    event = sample()
    summary = collate_dicts(event["plan"], event["results"], {}, {}, metrics_for([54, 56]))
    rows = list(csv.DictReader(io.StringIO(render.summary_csv(summary))))
    assert [(r["age"], r["status"]) for r in rows] == [("54", "SUCCEEDED"), ("55", "FAILED"), ("56", "SUCCEEDED")]
    assert rows[0]["heldout_c_index"] == "0.654" and rows[1]["heldout_c_index"] == ""
    assert rows[1]["exit_code"] == "1" and rows[1]["log_url"].startswith("https://")


def test_subject_fits_sns_and_message_caps_failures_at_ten() -> None:
    event = sample()
    plan = event["plan"]
    plan["run_id"] = "x" * 80
    template = plan["items"][1]
    plan["items"], results = [], []
    for age in range(40, 55):
        item = copy.deepcopy(template)
        item.update(age=age, job_name=f"j-{age}")
        plan["items"].append(item)
        results.append({"age": age, "job_name": f"j-{age}", "array_size": 0, "status": "FAILED",
                        "error": {"Error": "States.TaskFailed", "Cause": json.dumps({"JobId": f"id-{age}", "Status": "FAILED",
                                                                                        "StatusReason": f"reason {age}"})}})
    summary = collate_dicts(plan, results, {}, {}, {})
    subject = render.subject(summary)
    assert len(subject) <= 100 and subject.isascii() and subject.endswith("0/15 ok, 15 failed - FAILED")
    text = render.message(summary, {"report_uri": "s3://b/r.html", "summary_uri": "s3://b/s.json",
                                     "retry_manifest_uri": "s3://b/retry.yaml"})
    assert sum(1 for line in text.splitlines() if line.startswith("- age ")) == 10
    assert "- age 49, slice 0-10000: reason 49" in text and "age 50," not in text
    assert "... and 5 more in the report." in text
    assert "0 succeeded / 15 failed of 15 jobs" in text and "Failed ages: 40-54" in text


def test_message_reads_like_a_summary() -> None:
    event = sample()
    summary = collate_dicts(event["plan"], event["results"], {}, {}, metrics_for([54, 56]), region="us-east-1")
    text = render.message(summary, {"report_uri": "s3://b/runs/r/report.html", "summary_uri": "s3://b/runs/r/summary.json",
                                     "retry_manifest_uri": "s3://b/runs/r/retry-manifest.yaml"})
    lines = text.splitlines()
    assert lines[0] == f"Run {RUN_ID}"
    assert "2 succeeded / 1 failed of 3 jobs (age x slice) - ABOVE tolerance (33.3% failed, 0% tolerated)" in lines
    assert "Duration: 3m 10s (2025-11-25T09:00:01Z to 2025-11-25T09:03:11Z)" in lines
    assert "Cost estimate: up to $6.45 on spot ($18.43 on-demand) + $0.0004 Step Functions; at most 384 vCPU-hours" in lines
    assert "- age 55, slice 0-10000: Essential container in task exited (exit 1, 1 attempt, on spot)" in lines
    assert "Report: s3://b/runs/r/report.html" in lines
    assert "Retry manifest (failed pairs only): s3://b/runs/r/retry-manifest.yaml" in lines


ORIGINAL = {"schema_version": 1, "run_name": "aladyn", "ages": {"from": 40, "to": 79},
            "slices": {"size": 2500, "total": 10000}, "job": {"vcpus": 8}, "training": {"epochs": 50}}


def test_retry_manifest_is_exactly_the_failed_pairs() -> None:
    same = retry.retry_manifests(ORIGINAL, [(41, 0, 2500), (44, 0, 2500)])
    assert len(same) == 1
    assert same[0]["ages"] == [41, 44] and same[0]["slices"] == [{"start_index": 0, "end_index": 2500}]
    assert same[0]["run_name"] == "aladyn-retry" and same[0]["job"] == {"vcpus": 8}
    # Different slices per age: one manifest per group, never the cross product.
    split = retry.retry_manifests(ORIGINAL, [(41, 0, 2500), (44, 5000, 7500), (45, 0, 2500)])
    pairs = {(a, s["start_index"]) for d in split for a in d["ages"] for s in d["slices"]}
    assert pairs == {(41, 0), (44, 5000), (45, 0)}
    assert [d["run_name"] for d in split] == ["aladyn-retry-1", "aladyn-retry-2"]
    assert retry.retry_manifests(ORIGINAL, []) == []


def test_retry_manifest_yaml_validates_with_the_manifest_model() -> None:
    event = sample()
    summary = collate_dicts(event["plan"], event["results"], {}, {}, {})
    text = retry.retry_manifest_yaml(yaml.safe_dump(ORIGINAL), summary)
    assert text.startswith(f"# Retry of run {RUN_ID}")
    retry.validate_retry_manifest(text)  # raises ManifestInvalid if the shape is wrong
    assert yaml.safe_load(text)["ages"] == [55]
    # Issue item 15: the retry names the run it retries, so that run's finished work is reused
    assert yaml.safe_load(text)["resume_from"] == RUN_ID
    bad = text.replace("run_name: aladyn-retry", "run_name: 'bad name!'")
    from agesweep.errors import ManifestInvalid

    with pytest.raises(ManifestInvalid):
        retry.validate_retry_manifest(bad)


def test_retry_run_names() -> None:
    assert retry.retry_run_name("aladyn") == "aladyn-retry"
    assert retry.retry_run_name("aladyn-retry") == "aladyn-retry2"
    assert retry.retry_run_name("aladyn-retry2") == "aladyn-retry3"
    long = retry.retry_manifests({**ORIGINAL, "run_name": "a" * 64}, [(41, 0, 2500)])
    assert len(long[0]["run_name"]) == 64


def test_format_helpers() -> None:
    assert format_ages([45, 40, 41, 42, 50, 51]) == "40-42, 45, 50-51"
    assert format_duration(7980) == "2h 13m" and format_duration(None) == "unknown"
    assert format_cost(12.3) == "$12.30" and format_cost(None) == "not estimated"
    planner = {"step_functions": 0.0043, "compute_spot_at_timeout": 19.2, "compute_on_demand_at_timeout": 61.44,
               "vcpu_hours_at_timeout": 512.0, "gpu_hours_at_timeout": 0.0, "prices": {"region": "us-east-1"}}
    assert format_cost(planner) == (
        "up to $19.20 on spot ($61.44 on-demand) + $0.0043 Step Functions; at most 512 vCPU-hours")


def test_collates_a_plan_from_the_real_planner() -> None:
    """The planner's array items (slices None, bounds at the top level) collate into per-slice outcomes."""
    from agesweep.manifest import parse_manifest
    from agesweep.plan import plan as make_plan
    from agesweep.settings import Settings

    manifest_text = b"run_name: demo\nages: {from: 50, to: 52}\nslices: {size: 2500, total: 10000}\n"
    planned = make_plan(parse_manifest(manifest_text, "demo.yaml"), Settings(bucket_name="stack-bucket"), "demo-0123456789ab",
                        manifest_location={"bucket": "stack-bucket", "key": "manifests/demo.yaml", "version_id": "v1"}
                        ).model_dump(mode="json")
    assert [i["array_size"] for i in planned["items"]] == [4, 4, 4]
    results, children = [], {}
    for item in planned["items"]:
        parent = f"job-{item['age']}"
        failed_child = 2 if item["age"] == 51 else None
        status = "FAILED" if failed_child is not None else "SUCCEEDED"
        results.append({"age": item["age"], "job_name": item["job_name"], "array_size": 4, "status": status,
                        **({"job": {"JobId": parent, "Status": status}} if status == "SUCCEEDED" else
                           {"error": {"Error": "States.TaskFailed", "Cause": json.dumps({"JobId": parent, "Status": "FAILED"})}})})
        children[parent] = [{"jobId": f"{parent}:{i}", "status": "FAILED" if i == failed_child else "SUCCEEDED",
                             "statusReason": "Essential container in task exited" if i == failed_child else None,
                             "arrayProperties": {"index": i}} for i in range(4)]
    summary = collate_dicts(planned, results, {}, children, {})
    assert (summary.total, summary.failed) == (12, 1)
    assert retry.failed_pairs(summary) == [(51, 5000, 7500)]
    assert summary.ages[1].status == "FAILED" and summary.ages[0].status == "SUCCEEDED"
    docs = retry.retry_manifests({"run_name": "demo", "ages": {"from": 50, "to": 52},
                                    "slices": {"size": 2500, "total": 10000}}, retry.failed_pairs(summary))
    assert docs == [{"run_name": "demo-retry", "ages": [51], "slices": [{"start_index": 5000, "end_index": 7500}]}]
