"""Right-sizing, measured cost and training you can trust: the pure parts, on the sample collate
input (events/collate_results.json) and the metrics JSON fixtures in tests/unit/fixtures/."""

from __future__ import annotations

import copy
import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from test_collate import collate_dicts, sample

from agesweep import report_plots
from agesweep.collation import render
from agesweep.collation.facts import JobFacts, capacity_of
from agesweep.collation.resources import recommend, usable_mib
from agesweep.collation.trust import suspect_reasons
from agesweep.contracts import JobMetrics, Summary
from agesweep.errors import SettingsInvalid
from agesweep.plan import validate_and_plan
from agesweep.pricing import DEFAULT_PRICES, expected_job_seconds
from agesweep.settings import Settings, local_mode
from agesweep.text import format_cost

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MANIFESTS = Path(__file__).resolve().parents[2] / "events" / "manifests"
HEALTHY_ID = "4c7a1e2b-9d3f-4a8e-b1c6-2f5d8e9a0b1c"  # age 54 in the sample
DIVERGING_ID = "b3c5d7e9-2f4a-4b6c-8d0e-1f3a5b7c9d2e"  # age 56


def fixture(name: str) -> dict[str, Any]:
    # json reads NaN as the trainer writes it (Python's json), so the fixture is the real shape
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def described(job_id: str, seconds: float, *, on_demand_retry: bool = False) -> dict[str, Any]:
    """A DescribeJobs answer for a job that asked the seed's 32 vCPU / 128 GiB."""
    start = 1_764_061_000_000
    attempts = [{"container": {"containerInstanceArn": "arn:aws:ecs:us-east-1:1:container-instance/"
                               "agesweep-dev-SpotComputeEnvironment-x_Batch_1a2b/abc"},
                 "startedAt": start, "stoppedAt": start + seconds * 1000}]
    if on_demand_retry:
        attempts.insert(0, {"container": {"containerInstanceArn": "arn:aws:ecs:us-east-1:1:container-instance/"
                                          "agesweep-dev-OnDemandComputeEnvironment-y_Batch_9f/def"},
                            "startedAt": start - 700_000, "stoppedAt": start - 100_000})
    return {"jobId": job_id, "status": "SUCCEEDED", "startedAt": start, "stoppedAt": start + seconds * 1000,
            "attempts": attempts,
            "container": {"resourceRequirements": [{"type": "VCPU", "value": "32"}, {"type": "MEMORY", "value": "131072"}]}}


def measured_summary(**kwargs: Any) -> Summary:
    event = sample()
    metrics = {(54, 0, 10000): fixture("metrics_healthy.json"), (56, 0, 10000): fixture("metrics_diverging.json")}
    jobs = {HEALTHY_ID: described(HEALTHY_ID, 200), DIVERGING_ID: described(DIVERGING_ID, 190, on_demand_retry=True)}
    return collate_dicts(event["plan"], event["results"], jobs, {}, metrics, **kwargs)


# ------------------------------------------------------------------ right-sized by measurement


def test_recommendation_rounds_to_what_batch_packs() -> None:
    assert usable_mib(2, 2) == 3840  # a 2 vCPU / 4 GiB class less what ECS keeps back
    seed = recommend(peak_mib=2000, busy_vcpus=1.85, requested_vcpus=32)
    assert (seed.vcpus, seed.memory_mib) == (2, 3840)  # the benchmark's figures -> the stack's new defaults
    assert Settings().default_vcpus == seed.vcpus and Settings().default_memory_mib == seed.memory_mib
    assert recommend(peak_mib=4000, busy_vcpus=1.0, requested_vcpus=2).memory_mib == usable_mib(1, 8)  # 5200 MiB -> r class
    assert recommend(peak_mib=900, busy_vcpus=3.2, requested_vcpus=8).vcpus == 4  # powers of two
    assert recommend(peak_mib=900, busy_vcpus=1.05, requested_vcpus=8).vcpus == 1  # a core idle 95 % is not asked for
    assert recommend(peak_mib=900, busy_vcpus=None, requested_vcpus=3).vcpus == 4  # no CPU seconds: the request
    big = recommend(peak_mib=300_000, busy_vcpus=1.0, requested_vcpus=1)  # memory-bound: vCPUs grow with it
    assert big.vcpus == 32 and big.memory_mib >= 300_000 * 1.3


def test_resources_block_compares_asked_with_used() -> None:
    resources = measured_summary().resources
    assert resources is not None
    overall = resources.overall
    assert (overall.vcpus_requested, overall.memory_mib_requested) == (32, 131072)
    assert overall.peak_memory_mib == 2010.5 and overall.jobs == 3 and overall.measured_jobs == 2
    assert overall.busy_vcpus == pytest.approx((370 + 360) / (200 + 190), abs=1e-3)
    assert not overall.cpu_seconds_measured  # age 55 wrote no metrics: its CPU is requested vCPUs x Batch time
    by_age = {use.age: use for use in resources.ages}
    assert by_age[54].cpu_seconds == 370 and by_age[54].cpu_seconds_measured and by_age[54].wall_s == 200
    assert by_age[55].cpu_seconds == 32 * 66 and by_age[55].peak_memory_mib is None  # the failed job, Batch-timed
    assert resources.recommendation is not None
    assert (resources.recommendation.vcpus, resources.recommendation.memory_mib) == (2, 3840)


def test_a_job_without_overrides_is_compared_with_the_stack_defaults_in_the_plan() -> None:
    event = sample()
    for item in event["plan"]["items"]:
        item["container_overrides"] = {}
    event["plan"]["stack_resources"] = {"vcpus": 2, "memory_mib": 3840}
    summary = collate_dicts(event["plan"], event["results"][:1], {}, {}, {(54, 0, 10000): fixture("metrics_healthy.json")})
    assert summary.resources is not None
    assert (summary.resources.overall.vcpus_requested, summary.resources.overall.memory_mib_requested) == (2, 3840)


def test_message_and_report_show_asked_against_used() -> None:
    summary = measured_summary()
    text = render.message(summary, {})
    line = next(x for x in text.splitlines() if x.startswith("Resources: "))
    assert line == ("Resources: asked 32 vCPU / 128 GiB per job, used at most 2.0 GiB and 1.9 vCPUs busy; "
                    "next run: job: {vcpus: 2, memory_mib: 3840} (3.8 GiB)")
    from agesweep import report

    html = report.render_report(summary)
    assert "Asked 32 vCPU / 128 GiB per job, used at most 2.0 GiB" in html
    assert "job: {vcpus: 2, memory_mib: 3840}" in html


# ------------------------------------------------------------------ cost: estimated and measured


def test_expected_time_follows_the_benchmark_and_stops_at_the_timeout() -> None:
    assert expected_job_seconds(10_000, 1, 2, 3600) == pytest.approx(30 + 0.93)
    assert expected_job_seconds(5_000, 200, 2, 3600) == pytest.approx(30 + 200 * 0.93 / 2)
    assert expected_job_seconds(10_000, 200, 1, 3600) == pytest.approx(30 + 2 * 200 * 0.93)  # 1 vCPU: half speed
    assert expected_job_seconds(10_000, 100_000, 2, 3600) == 3600


def test_seed_and_demo_estimates_show_expected_and_bound() -> None:
    seed = validate_and_plan((MANIFESTS / "aladyn-0-10000.yaml").read_bytes(), "aladyn-0-10000.yaml", Settings(), "r-1")
    assert format_cost(seed.totals.cost_estimate_usd) == (
        "expected ~$0.08 on spot ($0.23 on-demand), 4.8 vCPU-hours; "
        "up to $5.38 on spot ($15.36 on-demand) + $0.0032 Step Functions; at most 320 vCPU-hours")
    demo = validate_and_plan((MANIFESTS / "demo.yaml").read_bytes(), "demo.yaml", Settings(), "r-1")
    cost = demo.totals.cost_estimate_usd
    assert cost.compute_spot_expected is not None and cost.compute_spot_expected < 0.02
    assert cost.vcpu_hours_at_timeout == 320


def test_prices_are_dated_and_overridable_by_env() -> None:
    settings = Settings.from_env({"PRICES_JSON": '{"as_of": "2026-01-10", "vcpu_hour_spot": 0.03}'})
    assert settings.prices.as_of == "2026-01-10" and settings.prices.vcpu_hour_spot == 0.03
    assert settings.prices.vcpu_hour_on_demand == DEFAULT_PRICES.vcpu_hour_on_demand  # the rest keep the defaults
    seed = validate_and_plan((MANIFESTS / "aladyn-0-10000.yaml").read_bytes(), "s.yaml", settings, "r-1")
    assert seed.totals.cost_estimate_usd.compute_spot_at_timeout == pytest.approx(320 * 0.03)
    assert "as of 2026-01-10" in seed.totals.estimate_note
    with pytest.raises(SettingsInvalid, match="PRICES_JSON.vcpu_hour_spt"):
        Settings.from_env({"PRICES_JSON": '{"vcpu_hour_spt": 0.03}'})
    with pytest.raises(SettingsInvalid, match="PRICES_JSON: not JSON"):
        Settings.from_env({"PRICES_JSON": "cheap"})


def test_capacity_comes_from_the_compute_environment_else_spot() -> None:
    assert capacity_of("arn:aws:ecs:r:1:container-instance/stack-OnDemandComputeEnvironment-x_Batch_1/i", None) == "on-demand"
    assert capacity_of("arn:aws:ecs:r:1:container-instance/stack-SpotComputeEnvironment-x_Batch_1/i", None) == "spot"
    assert capacity_of(None, "arn:aws:batch:r:1:job-queue/stack-OnDemandQueue") == "on-demand"
    assert capacity_of(None, None) == "spot"  # local mode, moto: the stack's queue is spot-first
    facts = JobFacts.of(described("j", 190, on_demand_retry=True))
    assert facts.runs == ((600.0, "on-demand"), (190.0, "spot")) and (facts.vcpus, facts.memory_mib) == (32, 131072)


def test_incurred_cost_is_every_attempt_on_its_capacity_plus_transitions() -> None:
    cost = measured_summary().cost_estimate.incurred
    assert cost is not None
    spot, on_demand = DEFAULT_PRICES.vcpu_hour_spot, DEFAULT_PRICES.vcpu_hour_on_demand
    # 32 vCPU / 128 GiB is exactly the 4 GiB per vCPU the vCPU price includes: no extra memory.
    # ages 54 and 56 (one spot attempt each, 56 after an on-demand one), and the failed 55: 66 s on spot
    expected = 32 * ((200 + 190 + 66) / 3600 * spot + 600 / 3600 * on_demand)
    assert cost.compute == pytest.approx(expected, rel=1e-3)
    assert cost.step_functions == pytest.approx(16 * 0.025 / 1000)
    assert cost.jobs_by_capacity == {"spot": 3} and cost.extra_memory_gib_hours == 0 and cost.unmeasured_jobs == 0
    assert cost.vcpu_hours == pytest.approx(32 * (200 + 190 + 66 + 600) / 3600, rel=1e-3)


def test_local_mode_labels_every_cost_if_run_on_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    assert local_mode({"AGESWEEP_LOCAL": "1"}) and not local_mode({}) and not local_mode({"AGESWEEP_LOCAL": "0"})
    monkeypatch.setenv("AGESWEEP_LOCAL", "1")
    assert Settings.from_env().local
    summary = measured_summary(local=local_mode())
    assert summary.cost_estimate.if_run_on_aws
    lines = render.message(summary, {}).splitlines()
    assert any(x.startswith("Cost estimate (if run on AWS): expected") or x.startswith("Cost estimate (if run on AWS): up to")
               for x in lines)
    assert any(x.startswith("Cost incurred (if run on AWS): $") for x in lines)
    from agesweep import report

    assert "Cost incurred (if run on AWS)" in report.render_report(summary)
    assert not measured_summary().cost_estimate.if_run_on_aws


# ------------------------------------------------------------------ training you can trust


def test_diverging_metrics_are_suspect_with_reasons() -> None:
    diverging = JobMetrics.model_validate(fixture("metrics_diverging.json"))
    reasons = suspect_reasons(diverging)
    assert reasons[:2] == ["loss rose at 3 checks in a row", "loss became NaN at epoch 200"]  # the trainer's first
    assert "final loss is nan" in reasons and "loss is not finite from epoch 200" in reasons
    assert "loss rising over the last 3 recorded epochs (18 to 31)" in reasons
    assert "held-out c-index fell from 0.610 (untrained) to 0.520" in reasons
    above = copy.deepcopy(fixture("metrics_diverging.json"))
    above.update(final_loss=31.0, loss_history=[[0, 20.1], [100, 15.0], [200, 31.0]], divergence=None)
    assert suspect_reasons(JobMetrics.model_validate(above)) == [
        "final loss 31 is above the initial 20.1 (epoch 0)", "held-out c-index fell from 0.610 (untrained) to 0.520"]
    assert suspect_reasons(JobMetrics.model_validate(fixture("metrics_healthy.json"))) == []


def test_summary_csv_and_message_mark_the_suspect_age() -> None:
    summary = measured_summary()
    assert summary.suspect_ages == [56]
    by_age = {a.age: a.slices[0] for a in summary.ages}
    assert by_age[56].suspect and not by_age[54].suspect and by_age[56].capacity == "spot"
    assert by_age[54].metrics is not None and by_age[54].metrics.heldout_c_index_initial == 0.61
    assert by_age[54].metrics.recovery is not None and by_age[54].metrics.recovery.theta_pearson == 0.83

    data = json.loads(render.summary_json(summary))  # strict JSON: NaN became null
    diverged = data["ages"][2]["slices"][0]
    assert diverged["suspect"] is True and diverged["metrics"]["final_loss"] is None
    assert diverged["metrics"]["loss_history"][-1] == [200, None]
    assert data["resources"]["recommendation"]["memory_mib"] == 3840 and data["suspect_ages"] == [56]
    assert Summary.model_validate(data).suspect_ages == [56]  # re-reads (e.g. report_for)

    rows = {r["age"]: r for r in csv.DictReader(io.StringIO(render.summary_csv(summary)))}
    assert (rows["54"]["heldout_c_index_initial"], rows["54"]["heldout_c_index"]) == ("0.61", "0.71")
    assert rows["56"]["suspect"] == "yes" and "final loss is nan" in rows["56"]["suspect_reasons"]
    assert rows["54"]["cpu_seconds"] == "370.0" and rows["54"]["suspect"] == ""

    lines = render.message(summary, {}).splitlines()
    assert "Suspect training: age 56 (age 56: loss rose at 3 checks in a row)" in lines


def test_report_shows_loss_curves_initial_and_final_c_index_and_suspects() -> None:
    from agesweep import report

    summary = measured_summary()
    assert set(report_plots.loss_curves(summary)) == {"age 54", "age 56"}
    assert math.isnan(report_plots.loss_curves(summary)["age 56"][0][-1][1]) and report_plots.loss_curves(summary)["age 56"][1]
    html = report.render_report(summary)
    assert '<img id="loss-plot"' in html and "<th>c-index initial</th>" in html
    assert "<td>0.610</td><td>0.710</td>" in html
    suspects = html.split('<ul id="suspects">', 1)[1].split("</ul>", 1)[0]
    assert "age 56 slice 0-10000" in suspects and "final loss is nan" in suspects and "age 54" not in suspects
    assert "&#9888; suspect" in html.split('<table class="grid">', 1)[1].split("</table>", 1)[0]


def test_wall_time_is_what_batch_timed_when_it_did() -> None:
    """The trainer's wall_time_s leaves out interpreter and torch start-up, its cpu_seconds do not:
    busy vCPUs divide by the job's Batch time, so start-up does not look like parallel work."""
    event = sample()
    started_late = {**fixture("metrics_healthy.json"), "wall_time_s": 50.0}
    jobs = {HEALTHY_ID: described(HEALTHY_ID, 200), DIVERGING_ID: described(DIVERGING_ID, 190)}
    summary = collate_dicts(event["plan"], event["results"], jobs, {}, {(54, 0, 10000): started_late})
    assert summary.resources is not None
    by_age = {use.age: use for use in summary.resources.ages}
    assert by_age[54].wall_s == 200 and by_age[54].busy_vcpus == pytest.approx(370 / 200, abs=1e-3)
