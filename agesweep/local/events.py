"""EventBridge as local mode completes it: delivery to Lambda/SNS/Step Functions targets, the events
AWS services emit themselves (Batch job and execution status changes), and what the topic's
subscribers received."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from moto.events.utils import EventMessageType, EventTemplateParser

from agesweep.local.lambdas import Lambdas
from agesweep.local.plumbing import Plumbing
from agesweep.local.template import Pseudo


def _millis(value: dt.datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value else None


def target_payload(target: dict[str, Any], event: EventMessageType) -> Any:
    """What a rule target receives: its constant Input, the InputTransformer's output, or the event."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
    return event


class Events:
    """Event delivery on the local endpoint's default bus."""

    def __init__(self, plumbing: Plumbing, pseudo: Pseudo, lambdas: Lambdas) -> None:
        self.plumbing = plumbing
        self.pseudo = pseudo
        self.lambdas = lambdas

    def deliver_to_target(self, rule: Any, target: dict[str, Any], event: EventMessageType) -> bool:
        """Deliver asynchronously, as EventBridge does; failures go to the target's DLQ."""
        if getattr(rule, "scheduled_expression", None):
            return True  # a scheduled rule matches no event (moto's empty pattern matches all): see schedules.py
        payload = target_payload(target, event)
        self.plumbing.spawn(self._deliver, rule.name, target, event, payload)
        return True

    def _send(self, arn: str, payload: Any) -> str | None:
        """Deliver `payload` to one target ARN; the error, if it failed."""
        service = arn.split(":")[2]
        if service == "lambda":
            from moto.awslambda.models import lambda_backends

            fn = lambda_backends[self.pseudo.account_id][self.pseudo.region].get_function(arn)
            _, errored, _ = self.lambdas.invoke(fn.function_name, fn.function_arn, payload)
            return "function error" if errored else None
        if service == "sns":
            self.plumbing.client("sns").publish(TopicArn=arn, Message=json.dumps(payload))
        elif service == "states":
            self.plumbing.client("stepfunctions").start_execution(stateMachineArn=arn, input=json.dumps(payload))
        return None

    def _deliver(self, rule_name: str, target: dict[str, Any], event: EventMessageType, payload: Any) -> None:
        arn = target["Arn"]
        try:
            error = self._send(arn, payload)
        except Exception as exc:  # delivery failures must not take local mode down
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            return
        self.plumbing.log(f"EventBridge rule {rule_name} → {arn} failed: {error}")
        dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
        if dlq:
            queue_name = dlq.rsplit(":", 1)[1]
            sqs = self.plumbing.client("sqs")
            url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))

    def deliver_now(self, rule_name: str, target: dict[str, Any], event: EventMessageType) -> None:
        """Deliver in this thread (the local scheduler's: one look at a time, as on a rate schedule)."""
        self._deliver(rule_name, target, event, target_payload(target, event))

    def put_aws_event(self, source: str, detail_type: str, resources: list[str], detail: dict[str, Any]) -> None:
        """Deliver an event that an AWS service itself would emit to the default bus."""
        from moto.events.models import events_backends

        event: EventMessageType = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": self.pseudo.account_id,
            "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.pseudo.region,
            "resources": resources,
            "detail": detail,
        }
        backend = events_backends[self.pseudo.account_id][self.pseudo.region]
        for bus in backend.event_buses.values():
            for rule in list(bus.rules.values()):
                if rule.state == "ENABLED":
                    rule.send_to_targets(event)

    def execution_terminated(self, execution: Any) -> None:
        """Emit "Step Functions Execution Status Change" for an execution that ended (moto does not)."""
        status = str(execution.exec_status.value if hasattr(execution.exec_status, "value") else execution.exec_status)
        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine.arn,
            "name": execution.name,
            "status": status,
            "startDate": _millis(execution.start_date),
            "stopDate": _millis(execution.stop_date),
            "input": json.dumps(execution.input_data),
            "output": json.dumps(execution.output) if execution.output is not None else None,
            "error": execution.error,
            "cause": execution.cause,
        }
        self.plumbing.spawn(self.put_aws_event, "aws.states", "Step Functions Execution Status Change", [execution.exec_arn], detail)

    def drain_notifications(self, observer_url: str) -> list[dict[str, str]]:
        """Every SNS message the observer queue received since the last drain, oldest first."""
        sqs = self.plumbing.client("sqs")
        messages: list[dict[str, str]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=observer_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                break
            for message in batch:
                body = json.loads(message["Body"])
                messages.append(
                    {"subject": body.get("Subject") or "", "message": body.get("Message", ""), "timestamp": body.get("Timestamp", "")}
                )
                sqs.delete_message(QueueUrl=observer_url, ReceiptHandle=message["ReceiptHandle"])
        return sorted(messages, key=lambda item: item["timestamp"])
