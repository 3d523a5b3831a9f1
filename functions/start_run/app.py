"""EventBridge "Object Created" under manifests/ -> one sweep execution per manifest version.

The execution name is the run id (digest of bucket, key, version), so a redelivered event starts
nothing new: Step Functions answers ExecutionAlreadyExists (or, while the run is still going,
returns the same execution).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from agesweep import aws
from agesweep.contracts import StartRunResult
from agesweep.runs import execution_input, is_folder_marker

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=S3EventNotificationEventBridgeModel)
def lambda_handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    bucket, obj = event.detail.bucket.name, event.detail.object
    if is_folder_marker(obj.key):
        logger.info("folder marker, not a manifest: nothing started", extra={"bucket": bucket, "key": obj.key})
        metrics.add_metric(name="IgnoredFolderMarkers", unit=MetricUnit.Count, value=1)
        return StartRunResult(started=False, reason="folder marker").model_dump(exclude_none=True)

    request = execution_input(bucket, obj.key, obj.version_id)
    run_id = request.run_id
    sfn = aws.client("stepfunctions")
    logger.append_keys(run_id=run_id)
    tracer.put_annotation(key="run_id", value=run_id)
    try:
        started = sfn.start_execution(
            stateMachineArn=os.environ["STATE_MACHINE_ARN"], name=run_id, input=request.model_dump_json()
        )
    except sfn.exceptions.ExecutionAlreadyExists:
        logger.info("duplicate event: this manifest version already has its run", extra=request.model_dump())
        metrics.add_metric(name="DuplicateManifestEvents", unit=MetricUnit.Count, value=1)
        return StartRunResult(run_id=run_id, started=False, reason="duplicate").model_dump(exclude_none=True)

    # Also reached for a redelivery while the run is still going: Step Functions then returns that execution.
    logger.info("run started", extra={**request.model_dump(), "execution_arn": started["executionArn"]})
    metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)
    return StartRunResult(run_id=run_id, started=True, execution_arn=started["executionArn"]).model_dump(exclude_none=True)
