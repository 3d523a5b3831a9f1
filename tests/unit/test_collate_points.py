"""Collation of runs with named axes (issue 11): an own workload's points and the trainer's extra axes
in the summary, the CSV, the SNS text, the report and the retry manifest (exactly the failed points)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from agesweep.collation import join, render, retry, store
from agesweep.collation.run import collate_run
from agesweep.contracts import ItemResult, JobMetrics, Plan, Summary
from agesweep.manifest import parse_manifest
from agesweep.plan import plan as make_plan
from agesweep.points import point_key
from agesweep.report import render_report
from agesweep.settings import Settings

STACK = Settings(bucket_name="stack-bucket")
RUN_ID = "own-0123456789ab"
W1, W2 = "2020-01-01_2020-01-30", "2020-01-31_2020-02-29"
OWN = """\
schema_version: 1
run_name: pulse
axes:
  variable: [t2m, tp]
  window: {start: 2020-01-01, end: 2020-02-29, days: 30}
input: s3://stack-bucket/in
output: s3://stack-bucket/out
job:
  container:
    image: registry.example/pulse:1.2.0
    command: [train, Ref::variable, Ref::window_start, Ref::window_end, Ref::output_folder]
    vcpus: 2
    memory_mib: 4096
"""
TRAINER = """\
schema_version: 1
run_name: hyper
ages: [55, 65]
slices: [{start_index: 0, end_index: 1000}]
axes:
  learning_rate: [0.002, 0.005]
  seed: [1, 2]
input: /data/input
output: /data/output
training: {epochs: 20}
"""


def planned(text: str, run_id: str = RUN_ID) -> Plan:
    location = {"bucket": "stack-bucket", "key": "manifests/run.yaml", "version_id": "v1"}
    return make_plan(parse_manifest(text.encode(), "run.yaml", STACK), STACK, run_id, manifest_location=location)


def results(plan: Plan, failed: set[tuple[tuple[str, str], ...]], age: int | None = None) -> list[ItemResult | None]:
    """One result per item: SUCCEEDED, or FAILED (exit 1) where the item's point (and age) is in `failed`."""
    out: list[ItemResult | None] = []
    for n, item in enumerate(plan.items):
        job = {"JobId": f"job-{n}", "Status": "SUCCEEDED"}
        fails = tuple(item.point.items()) in failed and (age is None or item.age == age)
        if not fails:
            out.append(ItemResult(age=item.age, job_name=item.job_name, array_size=0, status="SUCCEEDED", job=job))
            continue
        cause = {"JobId": f"job-{n}", "Status": "FAILED", "StatusReason": "Essential container in task exited",
                 "Container": {"ExitCode": 1}, "Attempts": [{"StartedAt": 1_000, "StoppedAt": 61_000}]}
        out.append(ItemResult.model_validate({"age": item.age, "job_name": item.job_name, "array_size": 0, "status": "FAILED",
                                              "error": {"Error": "States.TaskFailed", "Cause": json.dumps(cause)}}))
    return out


def own_summary(failed: set[tuple[tuple[str, str], ...]]) -> tuple[Plan, Summary]:
    plan = planned(OWN)
    metrics: dict[join.MetricsKey, JobMetrics] = {
        (point_key(item.point, None), 0, 0): JobMetrics.model_validate({"rmse": 0.1 * n, "final_loss": 1.0 + n})
        for n, item in enumerate(plan.items)
    }
    return plan, join.collate(plan, results(plan, failed), {}, {}, metrics)


def retried_points(text: str) -> list[dict[str, str]]:
    """The points every document of a retry manifest plans (each document must validate)."""
    retry.validate_retry_manifest(text)
    return [item.point for doc in retry.retry_documents(text)
            for item in make_plan(parse_manifest(doc.encode(), "retry.yaml", STACK), STACK, "retry-1").items]


TP_W2 = (("variable", "tp"), ("window", W2))


def test_an_own_runs_summary_has_a_row_per_point_and_its_failed_points() -> None:
    plan, summary = own_summary({TP_W2})
    assert [a.point for a in summary.ages] == [item.point for item in plan.items]
    assert (summary.total, summary.succeeded, summary.failed) == (4, 3, 1)
    assert summary.axes == ["variable", "window"]
    assert summary.failed_points == [{"variable": "tp", "window": W2}]
    assert summary.failed_ages == [] and summary.suspect_ages == []
    assert summary.failures[0].point == {"variable": "tp", "window": W2} and summary.failures[0].exit_code == 1
    # Metrics keyed per point: each point has its own, extra members kept.
    assert [s.metrics.model_dump(exclude_unset=True)["rmse"] for s in summary.slices() if s.metrics] == pytest.approx(
        [0.0, 0.1, 0.2, 0.3])
    data = json.loads(render.summary_json(summary))
    assert data["failed_points"] == [{"variable": "tp", "window": W2}] and data["axes"] == ["variable", "window"]


def test_the_csv_has_a_column_per_axis() -> None:
    _, summary = own_summary({TP_W2})
    rows = list(csv.DictReader(io.StringIO(render.summary_csv(summary))))
    assert [(r["variable"], r["window"], r["status"]) for r in rows] == [
        ("t2m", W1, "SUCCEEDED"), ("t2m", W2, "SUCCEEDED"), ("tp", W1, "SUCCEEDED"), ("tp", W2, "FAILED")]
    assert list(rows[0])[:3] == ["run_id", "variable", "window"]


def test_sns_text_and_report_name_the_failed_point() -> None:
    _, summary = own_summary({TP_W2})
    text = render.message(summary, {"retry_manifest_uri": "s3://b/r.yaml"})
    assert "3 succeeded / 1 failed of 4 jobs (one per point) - ABOVE tolerance (25% failed, 0% tolerated)" in text
    assert f"- variable tp, window {W2}: Essential container in task exited (exit 1, 1 attempt, on spot)" in text
    assert f"Failed points (1): variable tp, window {W2}" in text and "Axes: variable (2 values), window (2 values); 4 points" in text
    assert "Retry manifest (failed points only): s3://b/r.yaml" in text and "age None" not in text
    html = render_report(summary)
    assert f"variable tp, window {W2}" in html and "None" not in html.split("<h2>Run</h2>")[0]
    assert "<h2>Metrics against variable</h2>" in html  # no numeric axis: the first axis's values in order
    assert 'id="metrics-plot"' in html and 'id="no-metrics"' not in html
    for outcome in summary.slices():
        outcome.metrics = None  # jobs that wrote no metrics JSON: say how a job can, no empty plots
    bare = render_report(summary)
    assert 'id="no-metrics"' in bare and 'id="metrics-plot"' not in bare


def test_the_retry_manifest_plans_exactly_the_failed_point() -> None:
    _, summary = own_summary({TP_W2})
    text = retry.retry_manifest_yaml(OWN, summary)
    assert text.startswith(f"# Retry of run {RUN_ID}: only the points that failed.")
    assert f"# Failed: variable tp, window {W2}" in text
    doc = yaml.safe_load(retry.retry_documents(text)[0])
    assert doc["run_name"] == "pulse-retry" and "resume_from" not in doc  # an own job cannot resume
    assert doc["axes"] == {"variable": ["tp"], "window": [{"start": "2020-01-31", "end": "2020-02-29"}]}
    assert retried_points(text) == [{"variable": "tp", "window": W2}]


@pytest.mark.parametrize("failed", [
    {(("variable", "t2m"), ("window", W1)), TP_W2},  # no product: zipped
    {(("variable", "t2m"), ("window", W1)), (("variable", "t2m"), ("window", W2)), (("variable", "tp"), ("window", W1))},
    {(("variable", "t2m"), ("window", W1)), (("variable", "t2m"), ("window", W2))},  # a product of their values
])
def test_retries_of_several_points_rerun_exactly_those(failed: set[tuple[tuple[str, str], ...]]) -> None:
    _, summary = own_summary(failed)
    points = retried_points(retry.retry_manifest_yaml(OWN, summary))
    assert sorted(tuple(p.items()) for p in points) == sorted(failed)


def test_retry_keeps_range_values_as_numbers() -> None:
    original = {"axes": {"threshold": {"from": 0.1, "to": 0.3, "step": 0.1}, "scene": ["a", "b"]}}
    slots: list[retry.Slot] = [((("threshold", "0.2"), ("scene", "b")), None, 0, 0)]
    (doc,) = retry.point_retry_manifests(original, slots, "x")
    assert doc["axes"] == {"threshold": [0.2], "scene": ["b"]} and doc["combine"] == "product"


def test_the_trainer_with_axes_keys_metrics_per_point_and_retries_the_failed_point_and_age() -> None:
    plan = planned(TRAINER, "hyper-0123456789ab")
    assert len(plan.items) == 8
    metrics: dict[join.MetricsKey, JobMetrics] = {
        (point_key(i.point, i.age), 0, 1000): JobMetrics(final_loss=float(n), heldout_c_index=0.6) for n, i in enumerate(plan.items)
    }
    failed = (("learning_rate", "0.002"), ("seed", "2"))
    summary = join.collate(plan, results(plan, {failed}, age=65), {}, {}, metrics)
    # Two points with the same age do not share metrics (the failed job wrote some too).
    assert [s.metrics.final_loss for s in summary.slices() if s.metrics] == [float(n) for n in range(8)]
    assert summary.failed_points == [{"learning_rate": "0.002", "seed": "2", "age": "65"}] and summary.failed_ages == [65]
    text = render.message(summary, {})
    assert "- learning_rate 0.002, seed 2, age 65, slice 0-1000: Essential container in task exited" in text
    assert "of 8 jobs (point x age x slice)" in text
    assert "<h2>Metrics against learning_rate</h2>" in render_report(summary)
    retry_text = retry.retry_manifest_yaml(TRAINER, summary)
    doc = yaml.safe_load(retry.retry_documents(retry_text)[0])
    assert (doc["ages"], doc["axes"], doc["resume_from"]) == ([65], {"learning_rate": [0.002], "seed": [2]}, plan.run_id)
    retry.validate_retry_manifest(retry_text)
    items = make_plan(parse_manifest(retry_text.encode(), "retry.yaml", STACK), STACK, "retry-1").items
    assert [(i.point, i.age) for i in items] == [({"learning_rate": "0.002", "seed": "2"}, 65)]


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws(config={"batch": {"use_docker": False}}):
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="stack-bucket")
        client.put_object(Bucket="stack-bucket", Key="manifests/run.yaml", Body=OWN.encode())
        yield client


def test_point_metrics_are_read_under_each_points_results_uri(s3: Any) -> None:
    plan = planned(OWN)
    first, last = plan.items[0], plan.items[-1]
    _, prefix = first.parameters["results_uri"].removeprefix("s3://").split("/", 1)
    assert prefix == f"runs/{RUN_ID}/points/variable=t2m/window={W1}/"
    s3.put_object(Bucket="stack-bucket", Key=f"{prefix}metrics/a.json", Body=b'{"rmse": 0.5, "final_loss": 2.0}')
    s3.put_object(Bucket="stack-bucket", Key=f"{prefix}metrics/deep/b.json", Body=b'{"rmse": 0.4, "bias": -1}')
    s3.put_object(Bucket="stack-bucket", Key=f"{prefix}metrics/notes.txt", Body=b"not metrics")
    _, other = last.parameters["results_uri"].removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket="stack-bucket", Key=f"{other}metrics/m.json", Body=b"[1, 2]")  # no object: skipped
    found = store.read_point_metrics(s3, plan)
    assert list(found) == [(point_key(first.point, None), 0, 0)]
    assert found[(point_key(first.point, None), 0, 0)].model_dump(exclude_unset=True) == {
        "rmse": 0.4, "final_loss": 2.0, "bias": -1}


def test_trainer_metrics_are_read_under_each_points_prefix(s3: Any) -> None:
    plan = planned(TRAINER, "hyper-0123456789ab")
    for n, item in enumerate(plan.items):
        _, prefix = item.parameters["results_uri"].removeprefix("s3://").split("/", 1)
        key = f"{prefix}metrics/age_{item.age}/metrics_age_{item.age}_0_1000.json"
        s3.put_object(Bucket="stack-bucket", Key=key, Body=json.dumps({"final_loss": float(n)}).encode())
    found = store.read_point_metrics(s3, plan)
    assert {key: m.final_loss for key, m in found.items()} == {
        (point_key(i.point, i.age), 0, 1000): float(n) for n, i in enumerate(plan.items)}


def test_collate_run_writes_the_point_files(s3: Any) -> None:
    plan = planned(OWN)
    plan.manifest.version_id = None  # the bucket is not versioned: the manifest's latest version
    _, prefix = plan.items[0].parameters["results_uri"].removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket="stack-bucket", Key=f"{prefix}metrics/out.json", Body=b'{"final_loss": 0.25, "rmse": 1.5}')
    out = collate_run(plan, results(plan, {TP_W2}), bucket="stack-bucket", region="us-east-1", s3=s3,
                      batch=boto3.client("batch", region_name="us-east-1"), logs=boto3.client("logs", region_name="us-east-1"))
    assert (out.total, out.failed) == (4, 1)
    summary = json.loads(s3.get_object(Bucket="stack-bucket", Key=f"runs/{RUN_ID}/summary.json")["Body"].read())
    assert summary["ages"][0]["slices"][0]["metrics"] == {"final_loss": 0.25, "rmse": 1.5}
    assert summary["failed_points"] == [{"variable": "tp", "window": W2}]
    text = s3.get_object(Bucket="stack-bucket", Key=f"runs/{RUN_ID}/retry-manifest.yaml")["Body"].read().decode()
    assert not text.startswith("# WARNING") and retried_points(text) == [{"variable": "tp", "window": W2}]


def test_the_batch_alert_of_an_own_job_names_its_point() -> None:
    from pathlib import Path

    from agesweep import alerts

    event = json.loads((Path(__file__).resolve().parents[2] / "events" / "batch_job_failed.json").read_text())
    detail = event["detail"]
    detail["parameters"] = {"run_id": RUN_ID, "variable": "tp", "window_start": "2020-01-31", "window_end": "2020-02-29"}
    detail["tags"] = {"agesweep:run_id": RUN_ID, "agesweep:variable": "tp", "agesweep:window": W2}
    alert = alerts.batch_job_failed(event)
    assert alert is not None
    assert alert.subject.startswith("agesweep job failed: variable tp, window 2020-01-31_2020-02-29, run")
    lines = alert.message.splitlines()
    assert f"Point: variable tp, window {W2}" in lines and not any(line.startswith("Age:") for line in lines)
    assert "this point and" in alert.message


def test_an_own_jobs_plot_shows_its_own_metrics_against_its_first_numeric_axis() -> None:
    from agesweep import report_plots

    _, summary = own_summary({TP_W2})
    assert report_plots.plotted_metrics(summary) == ("final_loss", "rmse")
    assert report_plots.x_axis(summary) == report_plots.XAxis("variable", {"t2m": 0, "tp": 1})
    series = report_plots.plot_series(summary, report_plots.x_axis(summary), ("rmse", "final_loss"))
    assert series == {f"window {W1}": [(0.0, 0.0, 1.0), (1.0, pytest.approx(0.2), 3.0)], f"window {W2}": [(0.0, 0.1, 2.0)]}
    for a in summary.ages:  # a numeric axis wins over the first one
        a.point = {"threshold": str(len(a.job_name) % 3), **a.point}
    summary.axes = ["threshold", *summary.axes]
    assert report_plots.x_axis(summary).name == "threshold"


def test_own_points_without_metrics_get_one_note() -> None:
    plan = planned(OWN)
    summary = join.collate(plan, results(plan, {TP_W2}), {}, {}, {})
    assert summary.notes == [f"3 succeeded points wrote no JSON under <results_uri>metrics/ (variable t2m, window {W1}, ...)"]
