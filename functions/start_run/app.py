"""EventBridge "Object Created" under manifests/ -> one sweep execution per manifest version.

The execution name is the run id (digest of bucket, key, version), so a redelivered event starts
nothing new: the version's execution exists already (or Step Functions returns the running one,
which started before this call), and it is counted as a duplicate. A new version whose sha256 is
that of the key's latest run starts nothing either (`identical`, recorded under skipped/), unless
the upload asks for a rerun (metadata agesweep-rerun: true; agesweep.start).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from agesweep import aws, start
from agesweep.contracts import ExecutionInput, SkippedUpload, StartRunResult
from agesweep.runs import execution_input, is_folder_marker, skipped_key

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
    sfn, s3, machine = aws.client("stepfunctions"), aws.client("s3"), os.environ["STATE_MACHINE_ARN"]
    logger.append_keys(run_id=run_id)
    tracer.put_annotation(key="run_id", value=run_id)
    if start.describe(sfn, machine, run_id) is not None:
        return _duplicate(request, start.execution_arn(machine, run_id))
    if start.was_skipped(s3, bucket, run_id):  # a redelivery of a version that started nothing
        return _duplicate(request, None)

    decision = _decide(s3, sfn, machine, request)
    if not decision.start:
        return _identical(s3, request, decision)
    called_at = datetime.now(UTC)
    try:
        started = sfn.start_execution(
            stateMachineArn=machine, name=run_id, input=request.model_dump_json()
        )
    except sfn.exceptions.ExecutionAlreadyExists:
        return _duplicate(request, None)
    if start.is_redelivery(started["startDate"], called_at):  # StartExecution returned the running execution
        return _duplicate(request, started["executionArn"])

    logger.info("run started", extra={**request.model_dump(), "execution_arn": started["executionArn"],
                                      "sha256": decision.sha256, "reason": decision.reason})
    metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)
    if decision.identical_to:
        metrics.add_metric(name="RerunsRequested", unit=MetricUnit.Count, value=1)
    return StartRunResult(
        run_id=run_id, started=True, execution_arn=started["executionArn"], reason=decision.reason,
        identical_to=decision.identical_to,
    ).model_dump(exclude_none=True)


def _decide(s3: Any, sfn: Any, machine: str, request: ExecutionInput) -> start.Decision:
    """Compares the new version's sha256 with the key's latest run's. A version already gone
    cannot be compared: it is started, and the validate step reports it missing."""
    version = {"VersionId": request.version_id} if request.version_id else {}
    try:
        head = s3.head_object(Bucket=request.bucket, Key=request.key, ChecksumMode="ENABLED", **version)
    except ClientError as exc:
        if not aws.is_not_found(exc):
            raise
        logger.warning("manifest version not found: started without comparing", extra={"error": aws.error_code(exc)})
        return start.Decision(start=True)
    sha = start.content_sha256(s3, request.bucket, request.key, request.version_id, head)
    latest = start.latest_run(s3, sfn, machine, request.bucket, request.key, request.version_id)
    return start.decide(sha, latest, start.rerun_requested(head))


def _duplicate(request: ExecutionInput, execution_arn: str | None) -> dict[str, Any]:
    logger.info("duplicate event: this manifest version already has its run", extra=request.model_dump())
    metrics.add_metric(name="DuplicateManifestEvents", unit=MetricUnit.Count, value=1)
    return StartRunResult(
        run_id=request.run_id, started=False, reason="duplicate", execution_arn=execution_arn
    ).model_dump(exclude_none=True)


def _identical(s3: Any, request: ExecutionInput, decision: start.Decision) -> dict[str, Any]:
    """Nothing started: recorded as skipped/<run_id>.json (listed by `agesweep runs`), logged, counted."""
    assert decision.sha256 is not None and decision.identical_to is not None
    record = SkippedUpload(
        run_id=request.run_id, bucket=request.bucket, key=request.key, version_id=request.version_id,
        sha256=decision.sha256, identical_to=decision.identical_to, at=datetime.now(UTC).isoformat(),
    )
    s3.put_object(Bucket=request.bucket, Key=skipped_key(request.run_id),
                  Body=record.model_dump_json().encode(), ContentType="application/json")
    logger.info(
        "identical to the latest run of this key: nothing started (upload with metadata agesweep-rerun=true, "
        "or `agesweep submit --force`, to rerun it)", extra=record.model_dump(),
    )
    metrics.add_metric(name="IdenticalManifestUploads", unit=MetricUnit.Count, value=1)
    return StartRunResult(
        run_id=request.run_id, started=False, reason="identical", identical_to=decision.identical_to
    ).model_dump(exclude_none=True)
