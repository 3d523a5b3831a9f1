"""ValidateManifest step: read the manifest version from S3, validate and plan it, return the plan.

Raises ManifestInvalid / InputMissing / PreflightFailed (caught by name in the state machine), so no
job is ever submitted for a manifest that fails here.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from agesweep.errors import AgesweepError, InputMissing, ManifestInvalid
from agesweep.manifest import MAX_MANIFEST_BYTES
from agesweep.plan import validate_and_plan
from agesweep.preflight import Preflight
from agesweep.stack import StackConfig

logger = Logger()
tracer = Tracer()
metrics = Metrics()

_MISSING = {"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404", "NotFound"}
_clients: dict[tuple[str, str | None, str | None], Any] = {}


def _client(service: str) -> Any:
    """Clients are made once per container and reused by warm invocations (keyed by endpoint and
    region too, so local mode's in-process runs against a new moto server get a new client)."""
    key = (service, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    if key not in _clients:
        _clients[key] = boto3.session.Session().client(service)
    return _clients[key]


class ValidateManifestInput(BaseModel):
    """The state input the ASL passes (the execution input, with run_id = execution name)."""

    model_config = ConfigDict(extra="ignore")

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    version_id: str | None = None
    run_id: str = Field(min_length=1, max_length=80)


@tracer.capture_method
def read_manifest(s3: Any, bucket: str, key: str, version_id: str | None) -> bytes:
    """The exact object version the run was started for; size capped before reading the body."""
    request = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    try:
        obj = s3.get_object(**request)
    except ClientError as exc:
        code = str(exc.response["Error"].get("Code"))
        if code in _MISSING:
            where = f"s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")
            raise InputMissing(f"manifest: {where} not found: {code} (an existing manifest object)") from None
        raise
    if obj.get("ContentLength", 0) > MAX_MANIFEST_BYTES:
        obj["Body"].close()
        raise ManifestInvalid(
            [f"manifest: {obj['ContentLength']:,} bytes is too large (at most {MAX_MANIFEST_BYTES:,} bytes)"]
        )
    return obj["Body"].read(MAX_MANIFEST_BYTES + 1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ValidateManifestInput)
def lambda_handler(event: ValidateManifestInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(run_id=event.run_id)
    location = {"bucket": event.bucket, "key": event.key, "version_id": event.version_id}
    try:
        raw = read_manifest(_client("s3"), event.bucket, event.key, event.version_id)
        plan = validate_and_plan(
            raw,
            source_name=event.key,
            stack=StackConfig.from_env(),
            run_id=event.run_id,
            manifest_location=location,
            preflight=Preflight(_client("batch"), _client("ecr"), _client("s3")),
        )
    except AgesweepError as exc:
        metrics.add_metric(name=type(exc).__name__, unit=MetricUnit.Count, value=1)
        logger.warning("manifest rejected", extra={"error": type(exc).__name__, "problems": str(exc).splitlines()})
        raise
    metrics.add_metric(name="ManifestAccepted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="PlannedJobs", unit=MetricUnit.Count, value=plan["totals"]["jobs"])
    logger.info("manifest planned", extra={"jobs": plan["totals"]["jobs"], "child_jobs": plan["totals"]["child_jobs"]})
    return plan
