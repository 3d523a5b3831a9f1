"""The join: plan + the Map's iteration results + job facts + metrics -> one Summary.

Pure: the AWS reads happen before (agesweep.collation.store), so every rule here is tested on
fixtures. A plan item is one point (an age, axis values, or both): one Batch job (its slices share
the job's facts) or one array job (child i trains slice i and has facts of its own).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agesweep.collation.costs import incurred_cost
from agesweep.collation.facts import JobFacts, iso_ms
from agesweep.collation.lineage import run_lineage, summary_cost
from agesweep.collation.resources import SliceJob, run_resources
from agesweep.collation.trust import suspect_reasons
from agesweep.contracts import (
    AgeOutcome,
    CaughtError,
    Failure,
    ItemResult,
    JobMetrics,
    Lineage,
    Plan,
    PlanItem,
    SliceOutcome,
    Summary,
)
from agesweep.links import DEFAULT_LOG_GROUP, job_log_url
from agesweep.points import PointKey, point_key, point_record, where

TrainerKey = tuple[int, int, int]  # (age, start_index, end_index): a v1 run's metrics, one prefix for all
# A point's metrics (its own prefix): (point key, start_index, end_index); an own job's span is (0, 0).
MetricsKey = TrainerKey | tuple[PointKey, int, int]
SUCCEEDED = "SUCCEEDED"
NO_REASON = "failed (no reason recorded)"
# The metrics a summary keeps of a job's metrics JSON (its lineage is kept apart).
KEPT_METRICS = (
    "final_loss", "heldout_c_index", "heldout_c_index_initial", "n_patients", "epochs", "wall_time_s",
    "cpu_seconds", "peak_rss_mb", "device", "resumed_from_epoch", "loss_per_cell", "divergence", "recovery",
    "loss_history", "resumed_from_run", "reused_from_run",
)


def error_text(error: CaughtError | None, limit: int = 300) -> str | None:
    """A one-line reason for a caught error that is not a job description (e.g. an API failure)."""
    if error is None:
        return None
    cause: object = error.Cause
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            cause = parsed.get("errorMessage") or parsed.get("StatusReason") or parsed.get("message") or cause
    text = f"{error.Error or 'Error'}: {cause}" if cause else (error.Error or "Error")
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def metrics_key_of(item: PlanItem | None, age: int | None, span: tuple[int, int]) -> MetricsKey:
    """The key of one job's metrics: (age, start, end) without axis values, else the point's too."""
    if age is not None and (item is None or not item.point):
        return age, span[0], span[1]
    return point_key(item.point if item else {}, age), span[0], span[1]


def match_results(plan: Plan, results: Sequence[ItemResult | None]) -> list[tuple[PlanItem, ItemResult | None]]:
    """Each plan item with its iteration's result: by job name, else (a v1 run's item, no axis
    values) by age when only one result has it."""
    present = [r for r in results if r is not None]
    by_name = {r.job_name: r for r in present}
    by_age: dict[int, list[ItemResult]] = {}
    for r in present:
        if r.age is not None:
            by_age.setdefault(r.age, []).append(r)
    pairs: list[tuple[PlanItem, ItemResult | None]] = []
    for item in plan.items:
        result = by_name.get(item.job_name)
        same_age = by_age.get(item.age, []) if item.age is not None and not item.point else []
        if result is None and len(same_age) == 1:
            result = same_age[0]
        pairs.append((item, result))
    return pairs


@dataclass(frozen=True)
class Iteration:
    """What the Map iteration and Batch said about one plan item."""

    status: str
    reason: str | None
    job_id: str | None
    facts: JobFacts | None
    error: CaughtError | None


def iteration_of(result: ItemResult | None, jobs: Mapping[str, JobFacts], what: str = "age") -> Iteration:
    """The item's verdict: the described job (else the Catch's job description), status and reason."""
    if result is None:
        return Iteration("MISSING", f"no result from the state machine for this {what}", None, None, None)
    job_id = result.job_id
    facts = jobs.get(job_id) if job_id else None
    if facts is None:
        cause = result.cause_job()
        facts = JobFacts.of(cause) if cause is not None else None
    status: str = result.status
    reason = None
    if status != SUCCEEDED:
        reason = (facts.status_reason if facts else None) or error_text(result.error) or NO_REASON
        if facts is None and result.error is not None and not job_id:
            status = "NOT_SUBMITTED"
    return Iteration(status, reason, job_id, facts, result.error)


@dataclass
class Collector:
    """What the items add up as they are joined: every job's facts (timing, lineage) and notes."""

    metrics: Mapping[MetricsKey, JobMetrics]
    log_group: str
    region: str
    facts: list[JobFacts] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    jobs: list[SliceJob] = field(default_factory=list)


def kept_metrics(found: JobMetrics, *, extra: bool = False) -> JobMetrics:
    """The metrics a slice keeps: the trainer's figures the job wrote, without ids or lineage; with
    ``extra`` (an own job's, whose figures are its own) every other member it wrote too."""
    kept = {k: getattr(found, k) for k in KEPT_METRICS if k in found.model_fields_set}
    return JobMetrics(**kept, **(found.model_extra or {} if extra else {}))


def slice_outcome(
    age: int | None, span: tuple[int, int], facts: JobFacts | None, fallback_status: str, fallback_reason: str | None,
    into: Collector, item: PlanItem | None = None,
) -> SliceOutcome:
    """One (point, slice) from its job's facts; the iteration's verdict wins over a SUCCEEDED job."""
    status = (facts.status if facts else None) or fallback_status
    if fallback_status != SUCCEEDED and status == SUCCEEDED:
        # The state machine saw this job fail (e.g. a .sync timeout) although Batch says otherwise;
        # the iteration's verdict is what the run acted on.
        status = fallback_status
    described = facts
    facts = facts or JobFacts()
    found = into.metrics.get(metrics_key_of(item, age, span))
    reasons = suspect_reasons(found) if found else []
    outcome = SliceOutcome(
        age=age,
        point=dict(item.point) if item else {},
        start_index=span[0],
        end_index=span[1],
        status=status,
        status_reason=facts.status_reason or (fallback_reason if status != SUCCEEDED else None),
        exit_code=facts.exit_code,
        attempts=facts.attempts,
        duration_s=facts.duration_s,
        started_at=facts.started_at,
        stopped_at=facts.stopped_at,
        job_id=facts.job_id,
        array_index=facts.array_index,
        log_stream=facts.log_stream,
        log_url=job_log_url(into.log_group, facts.log_stream, into.region, facts.job_id, facts.attempts),
        reclaims=facts.reclaims,
        metrics=kept_metrics(found, extra=item is not None and item.age is None) if found else None,
        metrics_lineage=(found.lineage or Lineage()) if found else None,
        suspect=bool(reasons),
        suspect_reasons=reasons,
        capacity=facts.runs[-1][1] if facts.runs else None,
    )
    into.jobs.append(SliceJob(item, outcome, described))
    return outcome


def array_slices(
    item: PlanItem, iteration: Iteration, children: Sequence[JobFacts], into: Collector
) -> list[SliceOutcome]:
    """An array job's slices: child i's facts for slice i; a child not listed takes the item's verdict."""
    kids = {child.array_index: child for child in children if child.array_index is not None}
    into.facts.extend(kids.values())
    if iteration.job_id and not kids and iteration.facts is not None:
        into.notes.append(f"{item.label()}: no child jobs listed for array job {iteration.job_id}")
    outcomes = []
    for index, span in enumerate(item.slice_spans()):
        child = kids.get(index)
        fallback = (child.status if child else None) or iteration.status
        outcomes.append(slice_outcome(item.age, span, child, fallback, iteration.reason, into, item))
    return outcomes


def item_outcome(
    item: PlanItem, result: ItemResult | None, jobs: Mapping[str, JobFacts],
    children: Mapping[str, Sequence[JobFacts]], into: Collector,
) -> AgeOutcome:
    """One plan item: its iteration's verdict and the outcome of each of its slices."""
    iteration = iteration_of(result, jobs, "point" if item.point else "age")
    if iteration.facts is not None:
        into.facts.append(iteration.facts)
    if item.array_size >= 2:
        slices = array_slices(item, iteration, children.get(iteration.job_id or "", []), into)
    else:
        slices = [
            slice_outcome(item.age, span, iteration.facts, iteration.status, iteration.reason, into, item)
            for span in item.slice_spans()
        ]
    capacity = result.capacity if result is not None else "spot"
    escalation = result.escalation if result is not None else None
    escalated = capacity == "on-demand"
    spot_reclaims = escalation.reclaims if escalation is not None and escalated else 0
    for outcome in slices:
        if outcome.job_id or outcome.status not in ("MISSING", "NOT_SUBMITTED"):
            outcome.capacity = capacity
        if item.array_size < 2:  # a single job: its spot job's reclaims are this slice's too
            outcome.reclaims += spot_reclaims
    reclaims = sum(s.reclaims for s in slices) + (spot_reclaims if item.array_size >= 2 else 0)
    if iteration.status != SUCCEEDED:
        status = iteration.status
    else:
        status = SUCCEEDED if all(s.succeeded for s in slices) else "FAILED"
    return AgeOutcome(
        age=item.age,
        point=dict(item.point),
        job_name=item.job_name,
        job_id=iteration.job_id,
        array_size=item.array_size,
        status=status,
        status_reason=iteration.reason,
        error=iteration.error,
        capacity=capacity,
        reclaims=reclaims,
        escalated_from=escalation.job_id if escalated and escalation is not None else None,
        parameters=dict(item.parameters),
        slices=slices,
    )


def failures_of(slices: Sequence[SliceOutcome]) -> list[Failure]:
    return [
        Failure(
            age=s.age, point=dict(s.point), start_index=s.start_index, end_index=s.end_index, status=s.status,
            reason=s.status_reason or NO_REASON, exit_code=s.exit_code, attempts=s.attempts, log_url=s.log_url,
            capacity=s.capacity, reclaims=s.reclaims, log_tail=list(s.log_tail),
        )
        for s in slices
        if not s.succeeded
    ]


def missing_metrics_notes(slices: Sequence[SliceOutcome]) -> list[str]:
    """A note per trainer job that wrote no metrics; one for all an own job's points (metrics are optional there)."""
    missing = [s for s in slices if s.succeeded and s.metrics is None]
    own = [s for s in missing if s.age is None]
    notes = [f"{where(s.point, s.age, s.start_index, s.end_index, sep=' ')}: succeeded but no metrics JSON was found"
             for s in missing if s.age is not None]
    if own:
        first = where(own[0].point, None, 0, 0)
        notes.append(f"{len(own)} succeeded point{'s' if len(own) > 1 else ''} wrote no JSON under "
                     f"<results_uri>metrics/ ({first}{', ...' if len(own) > 1 else ''})")
    return notes


def run_window(facts: Sequence[JobFacts]) -> tuple[float | None, float | None, float | None]:
    """(first createdAt, last stoppedAt, seconds between) over every job of the run."""
    created = [f.created_ms for f in facts if f.created_ms]
    stopped = [f.stopped_ms for f in facts if f.stopped_ms]
    started_ms = min(created) if created else None
    finished_ms = max(stopped) if stopped else None
    duration = None
    if started_ms and finished_ms and finished_ms >= started_ms:
        duration = round((finished_ms - started_ms) / 1000, 3)
    return started_ms, finished_ms, duration


def failed_points(items: Sequence[AgeOutcome]) -> list[dict[str, str]]:
    """Each failed item's point once, in plan order (the trainer's slices of one point are one point)."""
    seen: dict[PointKey, dict[str, str]] = {}
    for a in items:
        if a.status != SUCCEEDED:
            seen.setdefault(point_key(a.point, a.age), point_record(a.point, a.age))
    return list(seen.values())


def failed_percent(total: int, failed: int) -> float:
    return round(100.0 * failed / total, 4) if total else 0.0


def collate(
    plan: Plan,
    results: Sequence[ItemResult | None],
    jobs: Mapping[str, JobFacts],
    children: Mapping[str, Sequence[JobFacts]],
    metrics: Mapping[MetricsKey, JobMetrics],
    *,
    log_group: str = DEFAULT_LOG_GROUP,
    region: str = "us-east-1",
    now: datetime | None = None,
    local: bool = False,
) -> Summary:
    """Join the plan, the Map's iteration results, the job facts and the metrics into a Summary.

    ``jobs`` maps job id -> its facts; ``children`` maps an array job id -> its children's facts;
    ``metrics`` maps metrics_key_of(item, age, span) -> the job's metrics JSON. ``local``: the run was local
    mode's, so its costs are what it would have cost on AWS.
    """
    now = now or datetime.now(UTC)
    into = Collector(metrics=metrics, log_group=log_group, region=region)
    ages = [item_outcome(item, result, jobs, children, into) for item, result in match_results(plan, results)]
    slices = [s for a in ages for s in a.slices]
    failures = failures_of(slices)
    started_ms, finished_ms, duration = run_window(into.facts)
    percent = failed_percent(len(slices), len(failures))
    return Summary(
        run_id=plan.run_id,
        run_name=plan.run_name or plan.run_id,
        lineage=run_lineage(plan, into.facts, slices),
        started_at=iso_ms(started_ms),
        finished_at=iso_ms(finished_ms),
        duration_s=duration,
        total=len(slices),
        succeeded=len(slices) - len(failures),
        failed=len(failures),
        failed_percent=percent,
        tolerated_failure_percent=plan.tolerated_failure_percent,
        within_tolerance=percent <= plan.tolerated_failure_percent + 1e-9,
        failed_ages=sorted({f.age for f in failures if f.age is not None}),
        suspect_ages=sorted({s.age for s in slices if s.suspect and s.age is not None}),
        axes=list(plan.axes),
        failed_points=failed_points(ages),
        cost_estimate=summary_cost(plan, incurred_cost(plan, into.jobs), local=local),
        resources=run_resources(plan, into.jobs),
        ages=ages,
        failures=failures,
        collated_at=now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        notes=into.notes + missing_metrics_notes(slices),
    )
