"""template.yaml → resources on the moto server: physical names, ARNs for Ref/GetAtt, and the bucket,
topic, queues, log groups, functions, Batch compute environment/queue/job definition, rules, state
machine and an outputs stack, created the way local mode runs them."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agesweep.aws import camel_case
from agesweep.local.plumbing import Plumbing
from agesweep.local.template import FunctionSpec, Pseudo, Resolver, StackSpec, read_stack

# CloudFormation's Ref returns an ARN for these types (a name, or a URL for queues, otherwise)
_REF_IS_ARN = frozenset({
    "AWS::SNS::Topic", "AWS::Serverless::StateMachine", "AWS::Batch::JobQueue",
    "AWS::Batch::JobDefinition", "AWS::Batch::ComputeEnvironment",
})
_TARGET_KEYS = frozenset({"Id", "Arn", "Input", "InputPath", "InputTransformer", "DeadLetterConfig", "RetryPolicy"})


@dataclass(frozen=True)
class Deployed:
    """What local mode created: the names a caller (the CLI, a test, the aws CLI) needs."""

    spec: StackSpec
    bucket: str
    topic_arn: str
    state_machine_arn: str
    job_queue_arn: str
    job_definition_arn: str
    job_log_group: str
    observer_url: str  # an SQS queue subscribed to the topic: what a subscriber receives
    queue_capacity: dict[str, str] = field(default_factory=dict)  # job queue name → spot | on-demand


def queue_capacity_of(spec: StackSpec, queue_logical_id: str) -> str:
    """spot when the queue's first compute environment is SPOT (or FARGATE_SPOT), else on-demand."""
    order: list[dict[str, Any]] = spec.resources[queue_logical_id].get("Properties", {}).get("ComputeEnvironmentOrder") or []
    first: dict[str, Any] = min(order, key=lambda entry: int(entry.get("Order", 0)), default={})
    ref = first.get("ComputeEnvironment")
    logical = ref.get("Ref") if isinstance(ref, dict) else None
    kind = (((spec.resources.get(str(logical)) or {}).get("Properties") or {}).get("ComputeResources") or {}).get("Type", "")
    return "spot" if "SPOT" in str(kind).upper() else "on-demand"


class PhysicalNames:
    """The physical id (`Ref`) and attributes (`Fn::GetAtt`) local mode gives each resource."""

    def __init__(self, pseudo: Pseudo, endpoint: str, parameters: Mapping[str, str] | None = None) -> None:
        self.pseudo = pseudo
        self.endpoint = endpoint
        self.parameters = dict(parameters or {})  # template parameter overrides, as `sam deploy` takes them
        self._resources: dict[str, Any] = {}

    def resolver(self, template: dict[str, Any]) -> Resolver:
        self._resources = template["Resources"]  # physical/attribute look up resource types here
        return Resolver(template, self.pseudo, self.physical, self.attribute, self.parameters)

    def _kind_and_name(self, logical_id: str) -> tuple[str, str]:
        return self._resources.get(logical_id, {}).get("Type", ""), f"{self.pseudo.stack_name}-{logical_id}"

    def _arn(self, kind: str, name: str) -> str | None:
        region, account = self.pseudo.region, self.pseudo.account_id
        return {
            "AWS::Serverless::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name.lower()}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{name}:*",
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{name}",
            "AWS::Serverless::StateMachine": f"arn:aws:states:{region}:{account}:stateMachine:{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{region}:{account}:{name}",
            "AWS::Events::Rule": f"arn:aws:events:{region}:{account}:rule/{name}",
            "AWS::Batch::JobQueue": f"arn:aws:batch:{region}:{account}:job-queue/{name}",
            "AWS::Batch::JobDefinition": f"arn:aws:batch:{region}:{account}:job-definition/{name}:1",
            "AWS::Batch::ComputeEnvironment": f"arn:aws:batch:{region}:{account}:compute-environment/{name}",
        }.get(kind)

    def physical(self, logical_id: str) -> str:
        """What `Ref` of a resource gives, for the names local mode creates."""
        kind, name = self._kind_and_name(logical_id)
        if kind == "AWS::S3::Bucket":
            return name.lower()
        if kind == "AWS::SQS::Queue":
            return f"{self.endpoint}/{self.pseudo.account_id}/{name}"
        if kind in _REF_IS_ARN:
            return self._arn(kind, name) or name
        return name

    def attribute(self, logical_id: str, attribute: str) -> str:
        """What `Fn::GetAtt` of a resource gives."""
        kind, name = self._kind_and_name(logical_id)
        if attribute == "Arn" and (arn := self._arn(kind, name)):
            return arn
        if attribute in {"Name", "TopicName", "QueueName"}:
            return name
        if attribute == "QueueUrl":
            return f"{self.endpoint}/{self.pseudo.account_id}/{name}"
        return f"{name}-{attribute}"


class Resources:
    """Creates the stack of template.yaml on the local endpoint."""

    def __init__(
        self, plumbing: Plumbing, pseudo: Pseudo, compute_environment_name: str, parameters: Mapping[str, str] | None = None
    ) -> None:
        self.plumbing = plumbing
        self.pseudo = pseudo
        self.compute_environment_name = compute_environment_name
        self.names = PhysicalNames(pseudo, plumbing.endpoint, parameters)

    def create(self, spec: StackSpec, register_function: Callable[[str, FunctionSpec], None]) -> Deployed:
        """Create every resource of `spec`; each function is handed to `register_function` as made."""
        client = self.plumbing.client
        role_arn = client("iam").create_role(
            RoleName=f"{self.pseudo.stack_name}-local-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        bucket = self._create_bucket(spec)
        topic_arn, observer_url = self._create_topic(spec)
        self._create_queues_and_log_groups(spec)
        self._create_functions(spec, role_arn, register_function)
        job_queue_arn, job_definition_arn, job_log_group = self._create_batch(spec, role_arn)
        queue_capacity = {self.names.attribute(lid, "Name"): queue_capacity_of(spec, lid) for lid in spec.job_queue_logical_ids}
        self._create_rules(spec)
        state_machine_arn = client("stepfunctions").create_state_machine(
            name=self.names.attribute(spec.state_machine_logical_id, "Name"),
            definition=spec.definition,
            roleArn=role_arn,
        )["stateMachineArn"]
        self._create_outputs_stack(spec)
        return Deployed(
            spec=spec,
            bucket=bucket,
            topic_arn=topic_arn,
            state_machine_arn=state_machine_arn,
            job_queue_arn=job_queue_arn,
            job_definition_arn=job_definition_arn,
            job_log_group=job_log_group,
            observer_url=observer_url,
            queue_capacity=queue_capacity,
        )

    def read_spec(self, root: Path) -> StackSpec:
        """template.yaml under `root`, intrinsics resolved to the names local mode creates."""
        return read_stack(root, self.names.resolver)

    def _create_bucket(self, spec: StackSpec) -> str:
        s3 = self.plumbing.client("s3")
        bucket = self.names.physical(spec.bucket_logical_id)
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
        return bucket

    def _create_topic(self, spec: StackSpec) -> tuple[str, str]:
        sns, sqs = self.plumbing.client("sns"), self.plumbing.client("sqs")
        topic_arn: str = sns.create_topic(Name=self.names.attribute(spec.topic_logical_id, "TopicName"))["TopicArn"]
        # local-only observer: an SQS subscription shows what a subscriber of the topic receives
        observer_url: str = sqs.create_queue(QueueName=f"{self.pseudo.stack_name}-local-sns-observer")["QueueUrl"]
        observer_arn = sqs.get_queue_attributes(QueueUrl=observer_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=observer_arn)
        return topic_arn, observer_url

    def _create_queues_and_log_groups(self, spec: StackSpec) -> None:
        for logical_id, resource in spec.resources.items():
            if resource.get("Type") == "AWS::SQS::Queue":
                self.plumbing.client("sqs").create_queue(QueueName=self.names.attribute(logical_id, "QueueName"))
            if resource.get("Type") == "AWS::Logs::LogGroup":
                self.plumbing.client("logs").create_log_group(logGroupName=self.names.physical(logical_id))

    def _create_functions(self, spec: StackSpec, role_arn: str, register_function: Callable[[str, FunctionSpec], None]) -> None:
        lam = self.plumbing.client("lambda")
        for logical_id, fn in spec.functions.items():
            archive = io.BytesIO()
            with zipfile.ZipFile(archive, "w") as zf:
                for path in sorted(fn.code_dir.glob("*.py")):
                    zf.write(path, path.name)
            name = self.names.physical(logical_id)
            lam.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role_arn,
                Handler=fn.handler,
                Code={"ZipFile": archive.getvalue()},
                Timeout=fn.timeout,
                Environment={"Variables": fn.environment},
            )
            register_function(name, fn)

    def _create_batch(self, spec: StackSpec, role_arn: str) -> tuple[str, str, str]:
        """Compute environment, job queue and job definition; returns their ARNs and the job log group."""
        batch = self.plumbing.client("batch")
        compute = batch.create_compute_environment(
            computeEnvironmentName=self.compute_environment_name,
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=role_arn,
        )
        # every queue of the template is served by the one local compute environment; which of
        # them is spot-first (reclaims are simulated there only) is in Deployed.queue_capacity
        for logical_id in spec.job_queue_logical_ids or [spec.job_queue_logical_id]:
            batch.create_job_queue(
                jobQueueName=self.names.attribute(logical_id, "Name"),
                state="ENABLED",
                priority=int(spec.resources[logical_id]["Properties"].get("Priority", 1)),
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": compute["computeEnvironmentArn"]}],
            )
        job_queue_arn = self.names.physical(spec.job_queue_logical_id)
        jd = spec.job_definition
        job_definition_arn: str = batch.register_job_definition(
            jobDefinitionName=self.names.attribute(jd.logical_id, "Name"),
            type="container",
            parameters=jd.parameters,
            containerProperties=camel_case(jd.container_properties),
            retryStrategy=camel_case(jd.retry_strategy),
            timeout={"attemptDurationSeconds": int(jd.timeout["AttemptDurationSeconds"])} if jd.timeout else {},
            propagateTags=jd.propagate_tags,
        )["jobDefinitionArn"]
        options = (jd.container_properties.get("LogConfiguration") or {}).get("Options") or {}
        job_log_group = str(options.get("awslogs-group", "/aws/batch/job"))
        logs = self.plumbing.client("logs")
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=job_log_group)
        return job_queue_arn, job_definition_arn, job_log_group

    def _create_rules(self, spec: StackSpec) -> None:
        events = self.plumbing.client("events")
        for logical_id, rule in spec.rules.items():
            name = self.names.attribute(logical_id, "Name")
            trigger = (
                {"ScheduleExpression": rule.schedule_expression}
                if rule.schedule_expression
                else {"EventPattern": json.dumps(rule.event_pattern)}
            )
            events.put_rule(Name=name, State="ENABLED", **trigger)
            targets = [{key: value for key, value in target.items() if key in _TARGET_KEYS} for target in rule.targets]
            if targets:
                events.put_targets(Rule=name, Targets=targets)

    def _create_outputs_stack(self, spec: StackSpec) -> None:
        """A CloudFormation stack carrying template.yaml's Outputs, so `--stack` lookups work locally."""
        body = {"Resources": {"LocalMode": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}, "Outputs": spec.outputs}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # moto does not model WaitConditionHandle; only Outputs matter
            self.plumbing.client("cloudformation").create_stack(StackName=self.pseudo.stack_name, TemplateBody=json.dumps(body))
