"""CollateResults: the Map's iteration results -> summary.json, summary.csv, report.html and
retry-manifest.yaml under runs/<run_id>/, plus the SNS subject and message the next state publishes.

An adapter only: parse CollateInput, call agesweep.collation.collate_run, return CollateOutput's dump.
"""

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from agesweep import aws
from agesweep.collation import collate_run
from agesweep.collation.map_results import read_map_run
from agesweep.contracts import CollateInput
from agesweep.links import DEFAULT_LOG_GROUP

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=CollateInput)
def lambda_handler(event: CollateInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(run_id=event.plan.run_id)
    bucket = os.environ["BUCKET_NAME"]
    plan, results = read_map_run(event.plan, event.results, aws.client("s3"), bucket)
    collated = collate_run(
        plan,
        results,
        bucket=bucket,
        log_group=os.environ.get("LOG_GROUP") or DEFAULT_LOG_GROUP,
        batch=aws.client("batch"),
        s3=aws.client("s3"),
        logs=aws.client("logs"),
    )
    metrics.add_metric(name="JobsSucceeded", unit=MetricUnit.Count, value=collated.succeeded)
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=collated.failed)
    logger.info("collated", extra=collated.model_dump(include={"total", "succeeded", "failed", "within_tolerance", "summary_uri"}))
    return collated.model_dump(mode="json")
