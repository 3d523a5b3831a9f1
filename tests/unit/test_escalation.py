"""Escalation verdicts, silenced alerts and the one-alert-per-item event pattern."""

from __future__ import annotations

import json
from typing import Any

from moto.events.models import EventPattern

from agesweep import alerts
from agesweep.batch_job import JobDescription
from agesweep.escalation import classify, job_of_cause
from agesweep.local.template import load_template
from tests.unit.test_alerts import load

HOST = "Host EC2 (instance i-0abc) terminated."
ON_DEMAND = "arn:aws:batch:us-east-1:123456789012:job-queue/od"
SPOT = "arn:aws:batch:us-east-1:123456789012:job-queue/spot"


def job(reason: str, attempts: list[str] | None = None, **extra: Any) -> JobDescription:
    return JobDescription.of({
        "jobId": "j1", "status": "FAILED", "statusReason": reason, "jobQueue": SPOT,
        "attempts": [{"statusReason": r} for r in (attempts or [reason])], **extra,
    })


def test_only_a_lost_host_escalates() -> None:
    assert classify(job(HOST, [HOST, HOST])).escalate
    assert classify(job(HOST, [HOST, HOST])).reclaims == 2
    for reason in ("Essential container in task exited", "Job attempt duration exceeded timeout",
                   "Cancelled by agesweep cancel"):
        assert not classify(job(reason)).escalate, reason
    assert not classify(None).escalate  # an API error, not a job


def test_an_array_job_escalates_only_when_every_failed_child_lost_its_host() -> None:
    parent = job("Array job failed: 2 of 3 child jobs failed", attempts=[])
    lost = [JobDescription.of({"jobId": f"j1:{i}", "status": "FAILED", "statusReason": HOST,
                               "attempts": [{"statusReason": HOST}]}) for i in range(2)]
    ok = JobDescription.of({"jobId": "j1:2", "status": "SUCCEEDED"})
    verdict = classify(parent, [*lost, ok])
    assert verdict.escalate and verdict.failed_children == 2 and verdict.reclaims == 2
    app = JobDescription.of({"jobId": "j1:1", "status": "FAILED", "statusReason": "Essential container in task exited"})
    assert not classify(parent, [lost[0], app, ok]).escalate


def test_the_cause_of_a_caught_batch_failure_is_read_as_the_job() -> None:
    cause = json.dumps({"JobId": "j9", "StatusReason": HOST, "Attempts": [{"StatusReason": HOST}]})
    described = job_of_cause(cause)
    assert described is not None and described.jobId == "j9" and classify(described).escalate
    assert job_of_cause("Error executing request") is None


def _event(detail: dict[str, Any]) -> dict[str, Any]:
    event = load("batch_job_failed.json")
    event["detail"].update(detail)
    return event


def test_no_alert_for_a_cancelled_job_nor_for_a_spot_job_about_to_escalate() -> None:
    cancelled = _event({"statusReason": "Cancelled by agesweep cancel", "attempts": []})
    assert alerts.alert_for(cancelled, on_demand_queue=ON_DEMAND) is None
    reclaimed = _event({"statusReason": HOST, "jobQueue": SPOT, "attempts": [{"statusReason": HOST}]})
    assert alerts.alert_for(reclaimed, on_demand_queue=ON_DEMAND) is None
    # lost on on-demand too: that is a failure, and it alerts
    lost_again = _event({"statusReason": HOST, "jobQueue": ON_DEMAND, "attempts": [{"statusReason": HOST}]})
    alert = alerts.alert_for(lost_again, on_demand_queue=ON_DEMAND)
    assert alert is not None and "retry-manifest.yaml reruns it (a cancelled run writes none)" in alert.message


def test_the_failed_job_rule_matches_single_jobs_and_array_parents_never_children() -> None:
    from pathlib import Path

    rule = load_template(Path(__file__).parents[2] / "template.yaml")["Resources"]["BatchJobFailedRule"]
    pattern = dict(rule["Properties"]["EventPattern"])
    pattern["detail"] = {k: v for k, v in pattern["detail"].items() if k != "jobQueue"}  # Refs aside
    matcher = EventPattern.load(json.dumps(pattern))
    base = {"source": "aws.batch", "detail-type": "Batch Job State Change"}
    assert matcher.matches_event({**base, "detail": {"status": "FAILED"}})
    assert matcher.matches_event({**base, "detail": {"status": "FAILED", "arrayProperties": {"size": 40, "statusSummary": {}}}})
    assert not matcher.matches_event({**base, "detail": {"status": "FAILED", "arrayProperties": {"index": 3}}})


def test_the_aborted_alert_says_what_was_cancelled() -> None:
    event = load("execution_failed.json")
    event["detail"]["status"] = "ABORTED"
    params = lambda age: json.dumps({"JobName": f"a-{age}", "Parameters": {"age": str(age)}})  # noqa: E731
    history = [
        {"id": 1, "type": "TaskScheduled", "taskScheduledEventDetails": {"resource": "submitJob.sync", "parameters": params(50)}},
        {"id": 2, "type": "TaskScheduled", "taskScheduledEventDetails": {"resource": "submitJob.sync", "parameters": params(51)}},
        {"id": 3, "type": "TaskSucceeded", "taskSucceededEventDetails": {"output": params(50)}},
    ]
    alert = alerts.execution_failed(event, history)
    assert "Cancelled: 1 age in flight (51); 1 had finished before the stop." in alert.message
    assert "this is the only message" in alert.message
