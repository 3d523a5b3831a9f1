"""ClassifyFailure: after a spot-first job failed, decide whether the item escalates to the
on-demand queue (every failure was a lost host) or is recorded as failed (anything else).

An adapter only: parse ClassifyInput, call agesweep.escalation.classify_failure, return the verdict.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from agesweep import aws
from agesweep.contracts import ClassifyInput
from agesweep.escalation import classify_failure

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ClassifyInput)
def lambda_handler(event: ClassifyInput, context: LambdaContext) -> dict[str, Any]:
    verdict = classify_failure(event, aws.client("batch"))
    if verdict.escalate:
        metrics.add_metric(name="ItemsEscalatedToOnDemand", unit=MetricUnit.Count, value=1)
    logger.info("classified", extra=verdict.model_dump(include={"escalate", "reason", "reclaims", "job_id", "failed_children"}))
    return verdict.model_dump(mode="json")
