"""CollateResults: the Map's iteration results -> summary.json, summary.csv, report.html and
retry-manifest.yaml under runs/<run_id>/, plus the SNS subject and message the next state publishes.

An adapter only: parse the input, call agesweep.collate.collate_run, return a plain dict.
"""

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from agesweep.collate import DEFAULT_LOG_GROUP, collate_run

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class ManifestRef(BaseModel):
    model_config = ConfigDict(extra="allow")

    bucket: str
    key: str
    version_id: str | None = None
    sha256: str | None = None


class PlanIn(BaseModel):
    """The parts of the plan collation relies on; the rest travels along untouched."""

    model_config = ConfigDict(extra="allow")

    run_id: str = Field(min_length=1)
    manifest: ManifestRef
    items: list[dict[str, Any]]
    tolerated_failure_percent: float = 0.0


class CollateInput(BaseModel):
    """What the CollateResults state sends: {"plan": ..., "results": [...]} (docs/internals.md)."""

    plan: PlanIn
    results: list[dict[str, Any]]


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=CollateInput)
def lambda_handler(event: CollateInput, context: LambdaContext) -> dict[str, Any]:
    plan = event.plan.model_dump(mode="json")
    logger.append_keys(run_id=event.plan.run_id)
    collated = collate_run(
        plan,
        event.results,
        bucket=os.environ["BUCKET_NAME"],
        log_group=os.environ.get("LOG_GROUP") or DEFAULT_LOG_GROUP,
    )
    metrics.add_metric(name="JobsSucceeded", unit=MetricUnit.Count, value=collated["succeeded"])
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=collated["failed"])
    logger.info(
        "collated",
        extra={k: collated[k] for k in ("total", "succeeded", "failed", "within_tolerance", "summary_uri")},
    )
    return collated
