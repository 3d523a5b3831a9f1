"""The collation package's small pure parts: job facts, the join's steps, lineage, renderings, retry file."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_collate import collate_dicts, sample

from agesweep.collation import join, lineage, render, retry
from agesweep.collation.facts import JobFacts, iso_ms
from agesweep.collation.run import metrics_location, output_uris
from agesweep.contracts import CaughtError, ItemResult, JobMetrics, Plan


def plan() -> Plan:
    return Plan.model_validate(sample()["plan"])


def result(**fields: Any) -> ItemResult:
    base = {"age": 54, "job_name": "aladyn-0-10000-age-54", "array_size": 0, "status": "SUCCEEDED"}
    return ItemResult.model_validate({**base, **fields})


def test_job_facts_from_either_casing_and_the_array_index_from_the_job_id() -> None:
    pascal = JobFacts.of({"JobId": "p:3", "Status": "FAILED", "Attempts": [{"StartedAt": 1_000, "StoppedAt": 4_000}],
                          "StoppedAt": 4_000, "Container": {"Image": "img:1"}})
    assert (pascal.job_id, pascal.status, pascal.array_index, pascal.image) == ("p:3", "FAILED", 3, "img:1")
    # No startedAt on the job: the first attempt's start times it.
    assert (pascal.attempts, pascal.duration_s, pascal.started_at) == (1, 3.0, "1970-01-01T00:00:01Z")
    assert JobFacts.of({"jobId": "p:x"}).array_index is None
    assert JobFacts.of({"jobId": "p", "arrayProperties": {"index": 0}}).array_index == 0
    # A stop before the start is no duration.
    assert JobFacts.of({"jobId": "j", "startedAt": 5_000, "stoppedAt": 4_000}).duration_s is None
    assert iso_ms(None) is None and iso_ms(0) is None


def test_results_match_by_job_name_else_by_a_unique_age() -> None:
    p = plan()
    renamed = result(age=55, job_name="renamed", status="FAILED")
    pairs = join.match_results(p, [result(), renamed, None])
    assert [(item.age, r.job_name if r else None) for item, r in pairs] == [
        (54, "aladyn-0-10000-age-54"), (55, "renamed"), (56, None)]
    twice = join.match_results(p, [renamed, result(age=55, job_name="other", status="FAILED")])
    assert twice[1][1] is None  # two results for age 55, neither named for it: no guess


def test_iteration_verdicts() -> None:
    assert join.iteration_of(None, {}).status == "MISSING"
    api = join.iteration_of(result(status="FAILED", error={"Error": "Batch.ClientException", "Cause": "no queue"}), {})
    assert (api.status, api.reason, api.job_id) == ("NOT_SUBMITTED", "Batch.ClientException: no queue", None)
    described = {"j-1": JobFacts(job_id="j-1", status="FAILED", status_reason="OOM")}
    failed = join.iteration_of(result(status="FAILED", job={"JobId": "j-1", "Status": "FAILED"}), described)
    assert (failed.status, failed.reason, failed.facts) == ("FAILED", "OOM", described["j-1"])
    unknown = join.iteration_of(result(status="FAILED", job={"JobId": "gone", "Status": "FAILED"}), {})
    assert (unknown.status, unknown.reason) == ("FAILED", "failed (no reason recorded)")


def test_error_text_reads_a_lambda_error_and_caps_the_length() -> None:
    lambda_error = CaughtError(Error="States.TaskFailed", Cause=json.dumps({"errorMessage": "boom\n  again"}))
    assert join.error_text(lambda_error) == "States.TaskFailed: boom again"
    assert join.error_text(CaughtError(Error="E")) == "E"
    long = join.error_text(CaughtError(Error="E", Cause="x" * 500), limit=50)
    assert long is not None and len(long) == 50 and long.endswith("...")
    assert join.error_text(None) is None


def test_a_batch_success_does_not_override_a_failed_iteration() -> None:
    into = join.Collector(metrics={}, log_group="/g", region="us-east-1")
    facts = JobFacts(job_id="j", status="SUCCEEDED", log_stream="s/1")
    outcome = join.slice_outcome(54, (0, 10), facts, "FAILED", "States.Timeout", into)
    assert (outcome.status, outcome.status_reason, outcome.job_id) == ("FAILED", "States.Timeout", "j")
    assert outcome.log_url is not None and outcome.log_url.endswith("log-events/s$252F1")


def test_kept_metrics_are_what_the_job_wrote_without_ids_or_lineage() -> None:
    found = JobMetrics.model_validate({"run_id": "r", "age": 54, "final_loss": 1.5, "device": "cpu", "custom": 7,
                                       "lineage": {"image": "img"}})
    kept = join.kept_metrics(found)
    assert kept.model_dump(exclude_unset=True) == {"final_loss": 1.5, "device": "cpu"}


def test_run_window_spans_first_creation_to_last_stop() -> None:
    facts = [JobFacts(created_ms=2_000, stopped_ms=9_000), JobFacts(created_ms=1_000, stopped_ms=5_000), JobFacts()]
    assert join.run_window(facts) == (1_000, 9_000, 8.0)
    assert join.run_window([]) == (None, None, None)
    assert join.failed_percent(3, 1) == 33.3333 and join.failed_percent(0, 0) == 0.0


def test_one_or_all_and_the_image_fallbacks() -> None:
    assert lineage.one_or_all(["b", None, "a", "b"]) == ["a", "b"]
    assert lineage.one_or_all(["a", "a"]) == "a" and lineage.one_or_all([None, ""]) is None
    p = plan().model_copy(update={"job_definition_request": {"ContainerProperties": {"Image": "requested:2"}}})
    assert lineage.run_image(p, [], []) == "requested:2"


def test_summary_json_keeps_only_the_metrics_a_job_wrote_in_a_fixed_order() -> None:
    event = sample()
    metrics = {(54, 0, 10000): {"epochs": 3, "final_loss": 1.5, "lineage": {"git_revision": "abc"}}}
    summary = collate_dicts(event["plan"], event["results"], {}, {}, metrics)
    first = json.loads(render.summary_json(summary))["ages"][0]["slices"][0]
    assert list(first["metrics"]) == ["final_loss", "epochs"]
    assert first["metrics_lineage"] == {"git_revision": "abc"}
    assert summary.lineage.git_revision == "abc"


def test_retry_file_notes_a_manifest_it_cannot_build_or_validate() -> None:
    event = sample()

    def summary() -> Any:
        return collate_dicts(event["plan"], event["results"], {}, {}, {})

    def unreadable() -> str:
        raise OSError("gone")

    broken = summary()
    text = retry.retry_file(broken, unreadable)
    assert text.startswith(f"# Retry manifest for run {broken.run_id} could not be built: OSError: gone")
    assert "# Failed: age 55 slice 0-10000" in text
    assert broken.notes[-1] == "retry manifest could not be built: OSError: gone"

    def refuse(_: str) -> None:
        raise ValueError("run_name:\n bad")

    flagged = summary()
    text = retry.retry_file(flagged, lambda: "run_name: aladyn\nages: [55]\n", refuse)
    assert text.startswith("# WARNING: this retry manifest does not validate: run_name: bad\n# Retry of run")
    assert flagged.notes[-1] == "retry manifest does not validate: run_name: bad"

    nothing_failed = collate_dicts(event["plan"], [{**r, "status": "SUCCEEDED", "error": None} for r in event["results"]],
                                   {}, {}, {})
    assert retry.retry_file(nothing_failed, unreadable) == ""


@pytest.mark.parametrize(("results_uri", "expected"), [
    ("s3://other/runs/r", ("other", "runs/r/")),
    ("", ("stack", "runs/aladyn-0-10000-3f2a9c1b7e4d/")),
    ("/local/path", ("stack", "runs/aladyn-0-10000-3f2a9c1b7e4d/")),
])
def test_metrics_location(results_uri: str, expected: tuple[str, str]) -> None:
    assert metrics_location(plan().model_copy(update={"results_uri": results_uri}), "stack") == expected


def test_output_uris() -> None:
    uris = output_uris("b", "r-1", "eu-west-1")
    assert uris["summary_uri"] == "s3://b/runs/r-1/summary.json"
    assert uris["report_console_url"] == "https://s3.console.aws.amazon.com/s3/object/b?region=eu-west-1&prefix=runs/r-1/report.html"
    # local mode has no console: no link to one
    assert "report_console_url" not in output_uris("b", "r-1", "eu-west-1", local=True)
