"""WatchEfs (scheduled, every minute): a manifest saved under the watched EFS folder starts a run.

An adapter only: parse the EventBridge Scheduled Event, look once with agesweep.efs_watch.Watcher
(settled files are uploaded to manifests/efs/<path>, where the S3 path starts the run; unusable ones
get one SNS alert), return the WatchResult. The file system is mounted at DATA_MOUNT (the access
point's root, which jobs see as /data); WATCH_FOLDER is the folder as jobs see it.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from agesweep import aws
from agesweep.efs_watch import Watcher, mount_folder

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    folder = os.environ["WATCH_FOLDER"]
    watcher = Watcher(
        aws.client("s3"),
        aws.client("sns"),
        bucket=os.environ["BUCKET_NAME"],
        topic_arn=os.environ["TOPIC_ARN"],
        folder=folder,
        mount=mount_folder(folder, os.environ["DATA_MOUNT"]),
    )
    result = watcher.look(event.time)
    for taken in result.taken:
        logger.info(f"{taken.path}: {taken.outcome}", extra=taken.model_dump(exclude_none=True))
    uploads = sum(t.outcome == "uploaded" for t in result.taken)
    alerts = sum(t.outcome == "alerted" for t in result.taken)
    metrics.add_metric(name="EfsManifestsUploaded", unit=MetricUnit.Count, value=uploads)
    metrics.add_metric(name="EfsManifestAlerts", unit=MetricUnit.Count, value=alerts)
    if not result.state_saved:
        logger.warning("another watcher wrote the state first; the next look redoes this one's settling")
    return result.model_dump(mode="json")
