"""Alert text from real event shapes (events/*.json) and GetExecutionHistory-shaped events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from agesweep import alerts

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def lambda_failure_history(error_type: str, message: str) -> list[dict[str, Any]]:
    """The events a caught Lambda error leaves (TaskFailed -> Catch -> Fail state), oldest first."""
    cause = json.dumps({"errorMessage": message, "errorType": error_type, "requestId": "0f1e2d3c",
                        "stackTrace": ['  File "/var/task/app.py", line 40, in lambda_handler']})
    return [
        {"id": 1, "type": "ExecutionStarted", "executionStartedEventDetails": {"input": "{}"}},
        {"id": 2, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "ValidateManifest", "input": "{}"}},
        {"id": 3, "type": "TaskScheduled", "taskScheduledEventDetails": {"resourceType": "lambda", "resource": "invoke"}},
        {"id": 4, "type": "TaskStarted", "taskStartedEventDetails": {"resourceType": "lambda", "resource": "invoke"}},
        {"id": 5, "type": "TaskFailed", "taskFailedEventDetails": {"resourceType": "lambda", "resource": "invoke",
                                                                  "error": error_type, "cause": cause}},
        {"id": 6, "type": "TaskStateExited", "stateExitedEventDetails": {"name": "ValidateManifest"}},
        {"id": 7, "type": "FailStateEntered", "stateEnteredEventDetails": {
            "name": "ManifestRejected", "input": json.dumps({"error": {"Error": error_type, "Cause": cause}})}},
        {"id": 8, "type": "ExecutionFailed", "executionFailedEventDetails": {
            "error": "ManifestRejected", "cause": "The manifest, or something it names, failed validation; no job was submitted."}},
    ]


def test_batch_alert_names_run_age_attempt_reason_and_log() -> None:
    alert = alerts.batch_job_failed(load("batch_job_failed.json"), log_group="/aws/batch/job")
    lines = alert.message.splitlines()
    assert alert.subject == "agesweep job failed: age 55, run aladyn-0-10000-3f2a9c1b7e4d"
    assert "Run: aladyn-0-10000-3f2a9c1b7e4d" in lines
    assert "Age: 55" in lines
    assert "Attempt: 2 of 3" in lines
    assert "Reason: Essential container in task exited" in lines
    assert "Exit code: 1" in lines
    assert ("Log: https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/"
            "$252Faws$252Fbatch$252Fjob/log-events/agesweep-dev-aladyn-model-job$252Fdefault$252F0f5e3d1c7b9a4e2d8c6b0a1f3e5d7c9b") in lines
    assert "  1. Host EC2 (instance i-0a1b2c3d4e5f67890) terminated. (1m 00s)" in lines
    assert '"detail"' not in alert.message and "{" not in alert.message  # no raw JSON


def test_batch_alert_falls_back_to_tags_and_computes_the_array_child_slice() -> None:
    event = load("batch_job_failed.json")
    detail = event["detail"]
    detail["parameters"] = {"start_index": "0", "end_index": "10000", "slice_size": "2500", "run_id": "none"}
    detail["arrayProperties"] = {"index": 3}
    detail["jobId"] += ":3"
    alert = alerts.batch_job_failed(event)
    assert "Run: aladyn-0-10000-3f2a9c1b7e4d" in alert.message  # from the agesweep:run_id tag
    assert "Age: 55" in alert.message
    assert "Slice: 7500-10000 (array child 3)" in alert.message


def test_batch_alert_without_a_container_says_so() -> None:
    event = load("batch_job_failed.json")
    detail = event["detail"]
    detail["attempts"] = []
    detail["container"] = {"image": "img"}
    detail["statusReason"] = "Dependent Job failed"
    alert = alerts.batch_job_failed(event)
    assert "Log: none (the job never started a container)" in alert.message
    assert "Reason: Dependent Job failed" in alert.message


def test_manifest_invalid_lists_every_problem_one_per_line() -> None:
    problems = "ages.to: 95 is too large (≤ 79)\nslices[1]: start_index 5 is not below end_index 5 (start_index < end_index)"
    alert = alerts.execution_failed(load("execution_failed.json"), lambda_failure_history("ManifestInvalid", problems))
    lines = alert.message.splitlines()
    assert alert.subject == "agesweep run failed: aladyn-0-10000-3f2a9c1b7e4d - manifest rejected"
    assert lines[0] == "Run aladyn-0-10000-3f2a9c1b7e4d: the manifest was rejected."
    assert alerts.WHY["ManifestRejected"] in lines
    assert "ManifestInvalid (2 problems):" in lines
    assert "  - ages.to: 95 is too large (≤ 79)" in lines
    assert "  - slices[1]: start_index 5 is not below end_index 5 (start_index < end_index)" in lines
    assert ("Manifest: s3://agesweep-dev-bucket-1a2b3c4d5e6f/manifests/aladyn-0-10000.yaml"
            " (version 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY)") in lines
    assert "stackTrace" not in alert.message and "requestId" not in alert.message


def test_history_order_does_not_matter() -> None:
    history = lambda_failure_history("InputMissing", "input /data/input/Y_tensor.pt does not exist")
    forward = alerts.execution_failed(load("execution_failed.json"), history)
    backward = alerts.execution_failed(load("execution_failed.json"), list(reversed(history)))
    assert forward.message == backward.message
    assert "InputMissing: input /data/input/Y_tensor.pt does not exist" in forward.message


def test_caught_error_in_the_fail_state_input_is_used_when_no_task_failed_event_is_read() -> None:
    history = [e for e in lambda_failure_history("PreflightFailed", "job queue q is DISABLED") if e["type"] != "TaskFailed"]
    alert = alerts.execution_failed(load("execution_failed.json"), history)
    assert "PreflightFailed: job queue q is DISABLED" in alert.message


def test_tolerance_exceeded_says_how_many_and_where_the_retry_is() -> None:
    event = load("execution_failed.json")
    event["detail"].update(error="ToleranceExceeded", cause="More ages failed than the manifest tolerates.")
    state = {"plan": {"tolerated_failure_percent": 5.0},
             "collation": {"collated": {"total": 40, "succeeded": 37, "failed": 3,
                                        "report_uri": "s3://b/runs/r/report.html",
                                        "retry_manifest_uri": "s3://b/runs/r/retry-manifest.yaml"}}}
    history = [
        {"id": 300, "type": "FailStateEntered", "stateEnteredEventDetails": {"name": "ToleranceExceeded", "input": json.dumps(state)}},
        {"id": 301, "type": "ExecutionFailed", "executionFailedEventDetails": {"error": "ToleranceExceeded", "cause": "..."}},
        # an age's caught Batch failure earlier in the run must not be shown as the reason
        {"id": 120, "type": "TaskFailed", "taskFailedEventDetails": {"error": "States.TaskFailed", "cause": "{}"}},
    ]
    alert = alerts.execution_failed(event, history)
    assert alert.subject.endswith("- too many ages failed")
    assert "37 succeeded / 3 failed of 40 jobs (5.0% tolerated)." in alert.message
    assert "Retry manifest: s3://b/runs/r/retry-manifest.yaml" in alert.message
    assert "States.TaskFailed" not in alert.message


@pytest.mark.parametrize(("status", "end", "expected"), [
    ("TIMED_OUT", {"id": 9, "type": "ExecutionTimedOut", "executionTimedOutEventDetails": {"error": "States.Timeout"}},
     "Run aladyn-0-10000-3f2a9c1b7e4d timed out in state RunAges."),
    ("ABORTED", {"id": 9, "type": "ExecutionAborted", "executionAbortedEventDetails": {}},
     "Run aladyn-0-10000-3f2a9c1b7e4d was stopped (StopExecution) in state RunAges."),
])
def test_timed_out_and_aborted(status: str, end: dict[str, Any], expected: str) -> None:
    event = load("execution_failed.json")
    event["detail"].update(status=status, error=None, cause=None)
    history = [{"id": 8, "type": "MapStateEntered", "stateEnteredEventDetails": {"name": "RunAges"}}, end]
    alert = alerts.execution_failed(event, history)
    assert alert.message.splitlines()[0] == expected
    assert alert.subject.startswith("agesweep run " + ("timed out" if status == "TIMED_OUT" else "aborted"))


def test_unexpected_failure_shows_the_state_and_error() -> None:
    event = load("execution_failed.json")
    event["detail"].update(error="States.Runtime", cause="An error occurred while executing the state 'CollateResults'.")
    history = [
        {"id": 10, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "CollateResults"}},
        {"id": 11, "type": "ExecutionFailed", "executionFailedEventDetails": {
            "error": "States.Runtime", "cause": "An error occurred while executing the state 'CollateResults'."}},
    ]
    alert = alerts.execution_failed(event, history)
    assert alert.message.splitlines()[0] == "Run aladyn-0-10000-3f2a9c1b7e4d failed in state CollateResults: States.Runtime."
    assert "Error: States.Runtime" in alert.message


def test_subjects_are_sns_safe_for_long_and_non_ascii_names() -> None:
    event = load("batch_job_failed.json")
    event["detail"]["parameters"]["run_id"] = "ä" * 30 + "x" * 90
    subject = alerts.batch_job_failed(event).subject
    assert len(subject) <= 100 and subject.isascii() and "\n" not in subject


def test_explain_cause_of_a_batch_job_description() -> None:
    cause = json.dumps({"JobId": "j-1", "JobName": "a-age-55", "Status": "FAILED", "StatusReason": "OutOfMemoryError: Container killed"})
    assert alerts.explain_cause(cause) == ["Batch job a-age-55 FAILED: OutOfMemoryError: Container killed"]


def test_unknown_detail_type_is_refused() -> None:
    event = copy.deepcopy(load("batch_job_failed.json"))
    event["detail-type"] = "Object Created"
    with pytest.raises(ValueError, match="Object Created"):
        alerts.alert_for(event)


def test_array_parent_alert_counts_its_children_by_status() -> None:
    event = load("batch_job_failed.json")
    event["detail"]["arrayProperties"] = {"size": 4, "statusSummary": {"FAILED": 1, "SUCCEEDED": 3}}
    assert "Array job: 4 children, 1 failed, 3 succeeded" in alerts.batch_job_failed(event).message.splitlines()


def test_alert_event_reads_either_detail_type_spelling_and_defaults_the_region() -> None:
    envelope = alerts.AlertEvent.of({"detail_type": alerts.BATCH_DETAIL_TYPE, "region": None, "detail": None})
    assert (envelope.detail_type, envelope.region, envelope.detail) == (alerts.BATCH_DETAIL_TYPE, "us-east-1", {})
    assert alerts.AlertEvent.of(load("execution_failed.json")).detail_type == alerts.EXECUTION_DETAIL_TYPE


def test_failure_from_history_names_the_failing_step_and_the_fail_state() -> None:
    found = alerts.failure_from_history(lambda_failure_history("InputMissing", "gone"))
    assert (found.end_type, found.error, found.state) == ("ExecutionFailed", "ManifestRejected", "ManifestRejected")
    assert (found.step_error, found.step_resource) == ("InputMissing", "lambda:invoke")
    assert isinstance(found.fail_input, dict) and found.fail_input["error"]["Error"] == "InputMissing"


def test_tolerance_lines_ignore_a_fail_input_of_another_shape() -> None:
    event = load("execution_failed.json")
    event["detail"].update(error="ToleranceExceeded", cause="More ages failed than the manifest tolerates.")
    history = [{"id": 2, "type": "FailStateEntered", "stateEnteredEventDetails": {
        "name": "ToleranceExceeded", "input": json.dumps({"collation": ["not", "a", "mapping"]})}}]
    alert = alerts.execution_failed(event, history)
    assert "Error: ToleranceExceeded" in alert.message.splitlines()
