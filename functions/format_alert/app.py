"""FormatAlert: turns the stack's EventBridge alerts (a failed Batch job, a failed sweep execution)
into one readable SNS message — which run, which age, why, and the log link — instead of raw JSON.

An adapter only: parse the event, call agesweep.alerts.alert_for, publish, return what was published.
"""

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from agesweep import aws
from agesweep.alerts import PublishedAlert, alert_for
from agesweep.links import DEFAULT_LOG_GROUP

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    alert = alert_for(
        event.model_dump(mode="json", by_alias=True),
        sfn=aws.client("stepfunctions"),
        log_group=os.environ.get("LOG_GROUP") or DEFAULT_LOG_GROUP,
        batch=aws.client("batch"),
        logs=aws.client("logs"),
        on_demand_queue=os.environ.get("ON_DEMAND_JOB_QUEUE_ARN"),
    )
    if alert is None:  # cancelled, an array child, or about to be resubmitted to on-demand
        logger.info("no alert due", extra={"detail_type": event.detail_type})
        metrics.add_metric(name="AlertsSilenced", unit=MetricUnit.Count, value=1)
        return {"published": False}
    if alert.run_id:
        logger.append_keys(run_id=alert.run_id)
    published = aws.client("sns").publish(TopicArn=os.environ["TOPIC_ARN"], Subject=alert.subject, Message=alert.message)
    metrics.add_metric(name="AlertsPublished", unit=MetricUnit.Count, value=1)
    logger.info("alert published", extra={"detail_type": event.detail_type, "subject": alert.subject})
    return PublishedAlert(subject=alert.subject, message=alert.message, message_id=published["MessageId"]).model_dump()
