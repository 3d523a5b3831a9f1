"""Where a run came from (manifest version + sha256, image, job definition ARN:revision, input,
parameters, trainer revision), what the planner estimated it would cost and what it incurred."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from agesweep.collation.facts import JobFacts
from agesweep.contracts import IncurredCost, Plan, RunLineage, SliceOutcome, SummaryCost

# Parameters that differ per job: the lineage shows the ones the whole run shares.
PER_JOB_PARAMS = frozenset({"start_index", "end_index", "age", "slice_size", "run_id"})


def one_or_all(values: Iterable[str | None]) -> str | list[str] | None:
    """The one distinct value, or every distinct value sorted, or None when there is none."""
    distinct = sorted({v for v in values if v})
    if len(distinct) == 1:
        return distinct[0]
    return distinct or None


def _requested_image(plan: Plan) -> str | None:
    container = (plan.job_definition_request or {}).get("ContainerProperties") or {}
    image = container.get("Image")
    return str(image) if image else None


def run_image(plan: Plan, facts: Sequence[JobFacts], slices: Sequence[SliceOutcome]) -> str | list[str] | None:
    """The image the jobs ran (Batch's word, else the trainer's lineage, else the plan's request)."""
    image = one_or_all(f.image for f in facts)
    if image is None:
        image = one_or_all(s.metrics_lineage.image for s in slices if s.metrics_lineage)
    return image if image is not None else _requested_image(plan)


def shared_parameters(plan: Plan) -> dict[str, str]:
    """The parameters every item has with one value: the run's own (an axis's vary, per point)."""
    if not plan.items:
        return {}
    shared = dict(plan.items[0].parameters)
    for item in plan.items[1:]:
        for key in [k for k, v in shared.items() if item.parameters.get(k) != v]:
            del shared[key]
    return shared


def run_lineage(plan: Plan, facts: Sequence[JobFacts], slices: Sequence[SliceOutcome]) -> RunLineage:
    first_params = shared_parameters(plan)
    return RunLineage(
        run_id=plan.run_id,
        manifest=plan.manifest,
        image=run_image(plan, facts, slices),
        job_definition=one_or_all(f.job_definition for f in facts) or plan.job_definition.ref,
        job_queue=plan.job_queue,
        input=plan.input,
        output=plan.output,
        results_uri=plan.results_uri,
        parameters={k: v for k, v in first_params.items() if k not in PER_JOB_PARAMS},
        git_revision=one_or_all(s.metrics_lineage.git_revision for s in slices if s.metrics_lineage),
        retry_of=first_params.get("resume_from"),
    )


def summary_cost(plan: Plan, incurred: IncurredCost | None = None, *, local: bool = False) -> SummaryCost:
    """The planner's estimate, what the run incurred, and whether both are 'if run on AWS' (local mode)."""
    return SummaryCost(
        cost_estimate_usd=plan.totals.cost_estimate_usd,
        estimate_note=plan.totals.estimate_note or None,
        incurred=incurred,
        if_run_on_aws=local,
    )
