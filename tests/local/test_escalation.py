"""Escalation end to end on moto: a job that loses its spot host twice is resubmitted, once, to the
on-demand queue, resumes from its checkpoint and finishes there; nobody is alerted for it."""

from __future__ import annotations

import json
from pathlib import Path

from agesweep.exit_codes import ExitCode
from agesweep.local.cloud import SpotInterruption
from agesweep.local.session import run_manifest
from tests.local.conftest import write_manifest


def test_two_reclaims_escalate_to_on_demand_and_the_item_completes_there(make_stack, tmp_path: Path) -> None:
    stack = make_stack(spot_interruptions=[SpotInterruption(age=50, times=2)])
    manifest = write_manifest(tmp_path / "esc.yaml", [50], run_name="esc", epochs=1500)

    result = run_manifest(stack, manifest)

    assert result.exit_code == ExitCode.OK, (result.error, result.cause)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    age = summary["ages"][0]
    assert (age["status"], age["capacity"], age["reclaims"]) == ("SUCCEEDED", "on-demand", 2)
    assert age["escalated_from"] and age["escalated_from"] != age["job_id"]
    batch = stack.client("batch")
    spot_job = batch.describe_jobs(jobs=[age["escalated_from"]])["jobs"][0]
    assert [a["statusReason"][:8] for a in spot_job["attempts"]] == ["Host EC2", "Host EC2"]
    on_demand = batch.describe_jobs(jobs=[age["job_id"]])["jobs"][0]
    assert on_demand["jobQueue"].endswith("OnDemandJobQueue")
    assert age["slices"][0]["metrics"]["resumed_from_epoch"]  # resumed from the spot job's checkpoint
    # an escalated item is no failure: only the run's summary went out
    assert len(result.notifications) == 1, [n["subject"] for n in result.notifications]
    assert "escalated to on-demand" in result.notifications[0]["message"]
    csv_header = (result.run_dir / "summary.csv").read_text().splitlines()[0]
    assert "capacity" in csv_header and "reclaims" in csv_header
