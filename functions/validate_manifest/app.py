"""ValidateManifest step: read the manifest version from S3, validate and plan it, return the plan.

Raises ManifestInvalid / InputMissing / PreflightFailed (caught by name in the state machine), so no
job is ever submitted for a manifest that fails here.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from agesweep import aws
from agesweep.contracts import ExecutionInput
from agesweep.errors import AgesweepError
from agesweep.manifest_source import manifest_origin, read_manifest_version
from agesweep.plan import validate_and_plan
from agesweep.preflight import Preflight
from agesweep.settings import Settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ExecutionInput)
def lambda_handler(event: ExecutionInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(run_id=event.run_id)
    location = {"bucket": event.bucket, "key": event.key, "version_id": event.version_id}
    try:
        raw = read_manifest_version(aws.client("s3"), event.bucket, event.key, event.version_id)
        if source := manifest_origin(aws.client("s3"), event.bucket, event.key, event.version_id):
            location["source"] = source  # e.g. the EFS path the watcher uploaded it from
        plan = validate_and_plan(
            raw,
            source_name=event.key,
            stack=Settings.from_env(),
            run_id=event.run_id,
            manifest_location=location,
            preflight=Preflight(aws.client("batch"), aws.client("ecr"), aws.client("s3")),
        )
    except AgesweepError as exc:
        metrics.add_metric(name=type(exc).__name__, unit=MetricUnit.Count, value=1)
        logger.warning("manifest rejected", extra={"error": type(exc).__name__, "problems": str(exc).splitlines()})
        raise
    if plan.map_mode == "DISTRIBUTED" and plan.items_key:  # the Distributed Map reads its items from here
        aws.client("s3").put_object(Bucket=event.bucket, Key=plan.items_key, Body=plan.items_json(),
                                    ContentType="application/json")
    metrics.add_metric(name="ManifestAccepted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="PlannedJobs", unit=MetricUnit.Count, value=plan.totals.jobs)
    logger.info("manifest planned", extra={"jobs": plan.totals.jobs, "child_jobs": plan.totals.child_jobs})
    return plan.to_state()
