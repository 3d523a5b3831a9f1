"""A deployed agesweep stack, found from its CloudFormation Outputs, and the clients to operate it.

The endpoint comes from boto3's own configuration (`AWS_ENDPOINT_URL`, profiles), so the same code
reaches AWS or local mode's moto server (`--stack agesweep-local`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import boto3
from botocore.exceptions import ClientError, NoRegionError
from pydantic import BaseModel

from agesweep import aws
from agesweep.operations.errors import OpsError, StackNotFound, aws_errors, explain
from agesweep.tracking import execution_arn_for

ModelT = TypeVar("ModelT", bound=BaseModel)

DEFAULT_STACK = "agesweep"

# The services the operator commands call. A Literal (not `str`) so that boto3-stubs' overloads of
# Session.client resolve (mypy unions the overloads' results) and a misspelt service fails the type check.
Service = Literal["batch", "cloudformation", "ec2", "logs", "s3", "service-quotas", "stepfunctions"]

# CloudFormation output → DeployedStack attribute (template.yaml's Outputs).
STACK_OUTPUTS = {
    "ManifestBucketName": "bucket",
    "StateMachineArn": "state_machine_arn",
    "JobQueueArn": "job_queue_arn",
    "JobDefinitionArn": "job_definition_arn",
    "NotificationTopicArn": "topic_arn",
    "JobLogGroupName": "log_group",
}


def new_session(region: str | None = None) -> boto3.session.Session:
    """A boto3 session in --region, else AWS_REGION, else boto3's own (AWS_DEFAULT_REGION, profile).

    boto3 reads AWS_DEFAULT_REGION only; the AWS CLI and the Lambda runtime also honour AWS_REGION
    (first), and the error line names both, so both have to work.
    """
    return boto3.session.Session(region_name=region or os.environ.get("AWS_REGION") or None)


class AwsClients:
    """One boto3 session and its clients; every client retries throttling with adaptive backoff."""

    def __init__(self, region: str | None = None, session: boto3.session.Session | None = None) -> None:
        self.session = session or new_session(region)
        self._clients: dict[Service, Any] = {}

    @property
    def region(self) -> str:
        if not self.session.region_name:
            raise OpsError(explain(NoRegionError()))
        return str(self.session.region_name)

    def client(self, service: Service) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region, config=aws.RETRY_CONFIG)
        return self._clients[service]


@dataclass
class DeployedStack:
    """The resources of one deployed agesweep stack, from its CloudFormation Outputs."""

    name: str
    region: str
    bucket: str
    state_machine_arn: str
    job_queue_arn: str
    job_definition_arn: str
    topic_arn: str
    log_group: str
    outputs: dict[str, str]
    clients: AwsClients = field(repr=False, compare=False)

    def client(self, service: Service) -> Any:
        return self.clients.client(service)

    def execution_arn(self, run: str) -> str:
        """RUN may be a run id (= execution name) or a full execution ARN."""
        return run if run.startswith("arn:") else execution_arn_for(self.state_machine_arn, run)

    def read_model(self, key: str, model: type[ModelT]) -> ModelT | None:
        """A JSON object of the stack bucket as `model`, None when there is no such object."""
        with aws_errors():
            try:
                body = self.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except ClientError as exc:
                if aws.is_not_found(exc):
                    return None
                raise
        return model.model_validate_json(body)


def discover_stack(name: str = DEFAULT_STACK, region: str | None = None, clients: AwsClients | None = None) -> DeployedStack:
    """Read the stack's Outputs; a missing stack or output is an OpsError naming what to check."""
    clients = clients or AwsClients(region)
    with aws_errors():
        cfn = clients.client("cloudformation")
        try:
            stacks = cfn.describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if aws.error_code(exc) == "ValidationError" and "does not exist" in str(exc):
                raise StackNotFound(
                    f"stack {name!r} not found in {clients.region}: check --stack / AGESWEEP_STACK and --region "
                    "(local mode: `agesweep local --serve`, AWS_ENDPOINT_URL, --stack agesweep-local)"
                ) from exc
            raise
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs") or []}
    missing = [key for key in STACK_OUTPUTS if key not in outputs]
    if missing:
        raise OpsError(f"stack {name!r} has no output {', '.join(missing)}: is it an agesweep stack (template.yaml)?")
    values = {attribute: outputs[key] for key, attribute in STACK_OUTPUTS.items()}
    return DeployedStack(name=name, region=clients.region, outputs=outputs, clients=clients, **values)
