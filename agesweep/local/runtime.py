"""The stack of template.yaml on one machine: a moto server, in-process Lambdas, local Batch jobs.

`LocalStack` starts moto's server on a free loopback port with the Step Functions interpreter
on, creates the resources template.yaml declares (resolved by agesweep.local.template), and
serves moto's hooks (agesweep.local.moto_hooks): Lambda handlers run in this process, Batch jobs
run their job definition's real command as local processes with `/data` mapped to a folder.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import fnmatch
import importlib.util
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import queue
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from botocore.config import Config

from agesweep.local import moto_hooks
from agesweep.local.template import FunctionSpec, Pseudo, Resolver, StackSpec, read_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
_FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
_TERMINATE_GRACE_S = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _lower_first_keys(node: Any, keep: frozenset[str] = frozenset({"Parameters", "Tags", "Options"})) -> Any:
    """CloudFormation PascalCase → the camelCase Batch's API takes (map-valued members kept as is)."""
    if isinstance(node, list):
        return [_lower_first_keys(item, keep) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        (key[:1].lower() + key[1:]): (value if key in keep else _lower_first_keys(value, keep))
        for key, value in node.items()
    }


@dataclass
class LambdaContext:
    """The context object the Lambda runtime hands a handler (powertools reads these fields)."""

    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline_ms: int = 0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


@dataclass
class SpotInterruption:
    """Local stand-in for an EC2 spot reclaim: the first attempt of a job is stopped by its host
    once its output shows `after_output` (by default: once training has started)."""

    age: int
    after_output: str = "epoch "


@dataclass
class SimulatedFailure:
    """Local stand-in for an application error: every attempt of this age's job exits non-zero."""

    age: int
    exit_code: int = 3


@dataclass
class JobEvent:
    """One Batch job status change, as local mode saw it (also sent to EventBridge)."""

    job_id: str
    job_name: str
    status: str
    attempt: int
    reason: str | None = None


class LocalStack:
    """One running local stack. Use as a context manager; one at a time per process."""

    def __init__(
        self,
        workdir: Path,
        data_dir: Path,
        workers: int,
        root: Path = REPO_ROOT,
        pseudo: Pseudo | None = None,
        spot_interruptions: list[SpotInterruption] | None = None,
        simulated_failures: list[SimulatedFailure] | None = None,
        port: int | None = None,
    ) -> None:
        self.root = root
        self.workdir = workdir
        self.data_dir = data_dir
        self.workers = max(1, workers)
        self.pseudo = pseudo or Pseudo(region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        self.port = port or _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.spot_interruptions = {item.age: item for item in spot_interruptions or []}
        self.simulated_failures = {item.age: item for item in simulated_failures or []}
        self._job_changed: dict[str, threading.Event] = {}
        self._job_changed_lock = threading.Lock()
        self._resources: dict[str, Any] = {}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._job_queue: queue.Queue[Any] = queue.Queue()  # FIFO, like a Batch job queue
        self._lambda_lock = threading.Lock()
        self._modules: dict[str, ModuleType] = {}
        self._threads: list[threading.Thread] = []
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}
        self.job_events: list[JobEvent] = []
        self.lambda_log = workdir / "lambda.log"
        self.spec: StackSpec | None = None
        self.names: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        """A boto3 client of the local endpoint (cached: clients are thread-safe and slow to build)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(
                    service,
                    endpoint_url=self.endpoint,
                    region_name=self.pseudo.region,
                    aws_access_key_id=_FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=_FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    config=Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=50),
                )
            return self._clients[service]

    def start(self) -> None:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        self._lambda_log_file = self.lambda_log.open("a", encoding="utf-8", buffering=1)
        # moto's interpreter leaves helper threads that can die noisily (e.g. its WaitForTaskToken
        # listener on .sync tasks); keep their tracebacks in the log instead of the terminal
        self._saved_excepthook = threading.excepthook
        threading.excepthook = self._thread_exception
        self._set_env(
            {
                **_FAKE_CREDENTIALS,
                "AWS_DEFAULT_REGION": self.pseudo.region,
                "AWS_REGION": self.pseudo.region,
                "AWS_ENDPOINT_URL": self.endpoint,
                "MOTO_PORT": str(self.port),  # the interpreter calls services back on this port
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_DEV": "false",
            }
        )
        self._saved_config = {key: copy.deepcopy(default_user_config.get(key)) for key in ("stepfunctions", "batch", "lambda")}
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        default_user_config["batch"] = {"use_docker": False}
        default_user_config["lambda"] = {"use_docker": True}  # _invoke_lambda is replaced by a hook
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # the interpreter logs every caught state error with its AST; the history has them
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        moto_hooks.activate(self)
        self._create_resources()
        for index in range(self.workers):  # a compute environment of `workers` job slots
            threading.Thread(target=self._job_worker, name=f"agesweep-local-worker-{index}", daemon=True).start()

    def stop(self) -> None:
        for _ in range(self.workers):
            self._job_queue.put(None)
        for job_id, process in list(self._processes.items()):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        moto_hooks.activate(None)
        if self._server is not None:
            self._server.stop()
            self._server = None
        from moto.core.base_backend import BackendDict
        from moto.core.model_instances import reset_model_data

        BackendDict.reset()  # a later stack in this process starts from an empty account
        reset_model_data()
        from moto.core.config import default_user_config

        default_user_config.update(getattr(self, "_saved_config", {}))
        for name in [name for name in sys.modules if name.startswith(f"agesweep_local_fn_")]:
            if name.endswith(f"_{id(self)}"):
                del sys.modules[name]
        threading.excepthook = self._saved_excepthook
        self._release_powertools_loggers()
        self._lambda_log_file.close()
        self._restore_env()

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    # ------------------------------------------------------------------ resources
    # CloudFormation's Ref returns an ARN for these types (a name, or a URL for queues, otherwise)
    _REF_IS_ARN = frozenset({
        "AWS::SNS::Topic", "AWS::Serverless::StateMachine", "AWS::Batch::JobQueue",
        "AWS::Batch::JobDefinition", "AWS::Batch::ComputeEnvironment",
    })

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

    def _physical(self, logical_id: str) -> str:
        """What `Ref` of a resource gives, for the names local mode creates."""
        kind, name = self._kind_and_name(logical_id)
        if kind == "AWS::S3::Bucket":
            return name.lower()
        if kind == "AWS::SQS::Queue":
            return f"{self.endpoint}/{self.pseudo.account_id}/{name}"
        if kind in self._REF_IS_ARN:
            return self._arn(kind, name) or name
        return name

    def _attribute(self, logical_id: str, attribute: str) -> str:
        """What `Fn::GetAtt` of a resource gives."""
        kind, name = self._kind_and_name(logical_id)
        if attribute == "Arn" and (arn := self._arn(kind, name)):
            return arn
        if attribute in {"Name", "TopicName", "QueueName"}:
            return name
        if attribute == "QueueUrl":
            return f"{self.endpoint}/{self.pseudo.account_id}/{name}"
        return f"{name}-{attribute}"

    def _resolver(self, template: dict[str, Any]) -> Resolver:
        self._resources = template["Resources"]  # _physical/_attribute look up resource types here
        return Resolver(template, self.pseudo, self._physical, self._attribute)

    def _create_resources(self) -> None:
        self.spec = spec = read_stack(self.root, self._resolver)
        s3, sns, sqs, iam = (self.client(name) for name in ("s3", "sns", "sqs", "iam"))
        role_arn = iam.create_role(
            RoleName=f"{self.pseudo.stack_name}-local-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]

        self.bucket = self._physical(spec.bucket_logical_id)
        s3.create_bucket(Bucket=self.bucket)
        s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        self.topic_arn = sns.create_topic(Name=self._attribute(spec.topic_logical_id, "TopicName"))["TopicArn"]
        # local-only observer: an SQS subscription shows what a subscriber of the topic receives
        self._observer_url = sqs.create_queue(QueueName=f"{self.pseudo.stack_name}-local-sns-observer")["QueueUrl"]
        observer_arn = sqs.get_queue_attributes(QueueUrl=self._observer_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=observer_arn)
        for logical_id, resource in spec.resources.items():
            if resource.get("Type") == "AWS::SQS::Queue":
                sqs.create_queue(QueueName=self._attribute(logical_id, "QueueName"))
            if resource.get("Type") == "AWS::Logs::LogGroup":
                self.client("logs").create_log_group(logGroupName=self._physical(logical_id))

        self._create_functions(role_arn)
        self._create_batch(role_arn)
        self._create_rules()
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=self._attribute(spec.state_machine_logical_id, "Name"),
            definition=spec.definition,
            roleArn=role_arn,
        )["stateMachineArn"]
        self._create_outputs_stack()
        self.names = {
            "bucket": self.bucket,
            "topic": self.topic_arn,
            "state_machine": self.state_machine_arn,
            "job_queue": self.job_queue_arn,
            "job_definition": self.job_definition_arn,
            "endpoint": self.endpoint,
        }

    def _create_outputs_stack(self) -> None:
        """A CloudFormation stack carrying template.yaml's Outputs, so `--stack` lookups work locally."""
        assert self.spec is not None
        body = {"Resources": {"LocalMode": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}, "Outputs": self.spec.outputs}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # moto does not model WaitConditionHandle; only Outputs matter
            self.client("cloudformation").create_stack(StackName=self.pseudo.stack_name, TemplateBody=json.dumps(body))

    def _create_functions(self, role_arn: str) -> None:
        assert self.spec is not None
        lam = self.client("lambda")
        self.functions_by_name: dict[str, FunctionSpec] = {}
        for logical_id, fn in self.spec.functions.items():
            archive = io.BytesIO()
            with zipfile.ZipFile(archive, "w") as zf:
                for path in sorted(fn.code_dir.glob("*.py")):
                    zf.write(path, path.name)
            name = self._physical(logical_id)
            lam.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role_arn,
                Handler=fn.handler,
                Code={"ZipFile": archive.getvalue()},
                Timeout=fn.timeout,
                Environment={"Variables": fn.environment},
            )
            self.functions_by_name[name] = fn
            with self._lambda_lock:  # initialise now, as provisioned concurrency would: no cold start mid-run
                self._module_for(fn)

    def _create_batch(self, role_arn: str) -> None:
        assert self.spec is not None
        batch = self.client("batch")
        queue_props = self.spec.resources[self.spec.job_queue_logical_id]["Properties"]
        compute = batch.create_compute_environment(
            computeEnvironmentName=f"{self.pseudo.stack_name}-local-processes",
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=role_arn,
        )
        self.job_queue_arn = batch.create_job_queue(
            jobQueueName=self._attribute(self.spec.job_queue_logical_id, "Name"),
            state="ENABLED",
            priority=int(queue_props.get("Priority", 1)),
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": compute["computeEnvironmentArn"]}],
        )["jobQueueArn"]
        jd = self.spec.job_definition
        self.job_definition_arn = batch.register_job_definition(
            jobDefinitionName=self._attribute(jd.logical_id, "Name"),
            type="container",
            parameters=jd.parameters,
            containerProperties=_lower_first_keys(jd.container_properties),
            retryStrategy=_lower_first_keys(jd.retry_strategy),
            timeout={"attemptDurationSeconds": int(jd.timeout["AttemptDurationSeconds"])} if jd.timeout else {},
            propagateTags=jd.propagate_tags,
        )["jobDefinitionArn"]
        options = (jd.container_properties.get("LogConfiguration") or {}).get("Options") or {}
        self.job_log_group = options.get("awslogs-group", "/aws/batch/job")
        logs = self.client("logs")
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=self.job_log_group)

    def _create_rules(self) -> None:
        assert self.spec is not None
        events = self.client("events")
        for logical_id, rule in self.spec.rules.items():
            name = self._attribute(logical_id, "Name")
            events.put_rule(Name=name, EventPattern=json.dumps(rule.event_pattern), State="ENABLED")
            targets = [
                {key: value for key, value in target.items() if key in {"Id", "Arn", "Input", "InputPath", "InputTransformer", "DeadLetterConfig", "RetryPolicy"}}
                for target in rule.targets
            ]
            if targets:
                events.put_targets(Rule=name, Targets=targets)

    # ------------------------------------------------------------------ Lambda hook
    def _module_for(self, fn: FunctionSpec) -> ModuleType:
        module_file, _, _ = fn.handler.rpartition(".")
        key = f"{fn.logical_id}:{module_file}"
        if key not in self._modules:
            path = fn.code_dir / f"{module_file.replace('.', '/')}.py"
            spec = importlib.util.spec_from_file_location(f"agesweep_local_fn_{fn.logical_id}_{id(self)}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # pydantic resolves the handler's annotations through it
            # powertools binds its log handler to sys.stdout at import: send it to lambda.log
            with contextlib.redirect_stdout(self._lambda_log_file), self._function_env(fn):
                spec.loader.exec_module(module)
            self._modules[key] = module
        return self._modules[key]

    @contextlib.contextmanager
    def _function_env(self, fn: FunctionSpec) -> Iterator[None]:
        saved = {key: os.environ.get(key) for key in fn.environment}
        os.environ.update(fn.environment)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def invoke_function(self, function: Any, event: Any) -> tuple[str, bool, str]:
        """Run the function's real handler in-process (serially: handlers read os.environ)."""
        fn = self.functions_by_name[function.function_name]
        if isinstance(event, (str, bytes)):
            event = json.loads(event or "{}")
        with self._lambda_lock:
            module = self._module_for(fn)
            handler = getattr(module, fn.handler.rpartition(".")[2])
            context = LambdaContext(
                function_name=function.function_name,
                invoked_function_arn=function.function_arn,
                deadline_ms=int(time.time() * 1000) + fn.timeout * 1000,
            )
            with self._function_env(fn):
                try:
                    result = handler(event, context)
                except Exception as error:  # the Lambda runtime reports any exception this way
                    payload = {"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": []}
                    self._log(f"{fn.logical_id} raised {type(error).__name__}: {error}")
                    return json.dumps(payload), True, ""
        return json.dumps(result), False, ""

    def _release_powertools_loggers(self) -> None:
        """Powertools keeps its logging.Logger (per service name) configured for the process; unbind
        it from this stack's log file so the next stack's handlers configure it afresh."""
        from aws_lambda_powertools.logging.constants import (
            LOGGER_ATTRIBUTE_POWERTOOLS_HANDLER,
            LOGGER_ATTRIBUTE_PRECONFIGURED,
        )

        for name in list(logging.Logger.manager.loggerDict):
            logger = logging.getLogger(name)
            ours = [h for h in logger.handlers if getattr(h, "stream", None) is self._lambda_log_file]
            if ours:
                for handler in ours:
                    logger.removeHandler(handler)
                for attribute in (LOGGER_ATTRIBUTE_PRECONFIGURED, LOGGER_ATTRIBUTE_POWERTOOLS_HANDLER):
                    if hasattr(logger, attribute):
                        delattr(logger, attribute)

    def _thread_exception(self, args: Any) -> None:
        import traceback

        text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        self._log(f"thread {getattr(args.thread, 'name', '?')} died:\n{text}")

    def _log(self, line: str) -> None:
        self._lambda_log_file.write(f"{dt.datetime.now(dt.timezone.utc).isoformat()} {line}\n")

    # ------------------------------------------------------------------ EventBridge hook
    def deliver_to_target(self, rule: Any, target: dict[str, Any], event: dict[str, Any]) -> bool:
        """Deliver asynchronously, as EventBridge does; failures go to the target's DLQ."""
        if "Input" in target:
            payload: Any = json.loads(target["Input"])
        elif "InputTransformer" in target:
            from moto.events.models import EventTemplateParser

            transformer = target["InputTransformer"]
            payload = EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=event,
            )
        else:
            payload = event

        def deliver() -> None:
            arn = target["Arn"]
            service = arn.split(":")[2]
            error: str | None = None
            try:
                if service == "lambda":
                    from moto.awslambda.models import lambda_backends

                    fn = lambda_backends[self.pseudo.account_id][self.pseudo.region].get_function(arn)
                    _, errored, _ = self.invoke_function(fn, payload)
                    error = "function error" if errored else None
                elif service == "sns":
                    self.client("sns").publish(TopicArn=arn, Message=json.dumps(payload))
                elif service == "states":
                    self.client("stepfunctions").start_execution(stateMachineArn=arn, input=json.dumps(payload))
            except Exception as exc:  # delivery failures must not take the stack down
                error = f"{type(exc).__name__}: {exc}"
            if error is not None:
                self._log(f"EventBridge rule {rule.name} → {arn} failed: {error}")
                dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
                if dlq:
                    queue_name = dlq.rsplit(":", 1)[1]
                    sqs = self.client("sqs")
                    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
                    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))

        self._spawn(deliver)
        return True

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def put_aws_event(self, source: str, detail_type: str, resources: list[str], detail: dict[str, Any]) -> None:
        """Deliver an event that an AWS service itself would emit to the default bus."""
        from moto.events.models import events_backends

        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": self.pseudo.account_id,
            "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
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
        status = str(execution.exec_status.value if hasattr(execution.exec_status, "value") else execution.exec_status)

        def millis(value: Any) -> int | None:
            return int(value.timestamp() * 1000) if value else None

        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine.arn,
            "name": execution.name,
            "status": status,
            "startDate": millis(execution.start_date),
            "stopDate": millis(execution.stop_date),
            "input": json.dumps(execution.input_data),
            "output": json.dumps(execution.output) if execution.output is not None else None,
            "error": execution.error,
            "cause": execution.cause,
        }
        self._spawn(self.put_aws_event, "aws.states", "Step Functions Execution Status Change", [execution.exec_arn], detail)

    # ------------------------------------------------------------------ Batch hook
    def start_batch_job(self, backend: Any, job: Any, include_start_attempt: bool) -> None:
        backend.backend._jobs[job.job_id] = job
        if include_start_attempt:
            job.status = "RUNNABLE"
            self._job_queue.put(job)
        else:
            job.status = "PENDING"
            self._spawn(self._await_children, job)

    def _job_worker(self) -> None:
        while (job := self._job_queue.get()) is not None:
            try:
                self._run_job(job)
            except Exception as error:  # a broken job must not stop the worker
                self._log(f"job {job.job_name} could not run: {type(error).__name__}: {error}")
                job.job_stopped_reason = f"agesweep local: {type(error).__name__}: {error}"
                job._mark_stopped(success=False)

    def _job_event(self, job_id: str) -> threading.Event:
        with self._job_changed_lock:
            return self._job_changed.setdefault(job_id, threading.Event())

    def wait_for_job_change(self, job_id: str, timeout: float) -> None:
        """Block a .sync poll until its job stops (or `timeout`); see moto_hooks._SyncPollClock."""
        self._job_event(job_id).wait(timeout)

    def _emit_job_change(self, job: Any) -> None:
        if job.job_stopped:
            self._job_event(job.job_id).set()
        attempt = len(job.attempts)
        self.job_events.append(JobEvent(job.job_id, job.job_name, job.status, attempt, job.job_stopped_reason))
        self.put_aws_event("aws.batch", "Batch Job State Change", [job.arn], job.describe())

    def _await_children(self, parent: Any) -> None:
        """An array parent runs while its children do and fails if any child fails."""
        while parent._child_jobs is None:
            time.sleep(0.05)
        parent.job_started_at = dt.datetime.now()
        while not all(child.job_stopped for child in parent._child_jobs):
            if any(child.status in ("STARTING", "RUNNING") for child in parent._child_jobs):
                parent.status = "RUNNING"
            if parent.stop:
                for child in parent._child_jobs:
                    child.terminate(parent.job_stopped_reason or "Array job terminated")
            time.sleep(0.1)
        failed = sum(child.status == "FAILED" for child in parent._child_jobs)
        if failed:
            parent.job_stopped_reason = f"Array job failed: {failed} of {len(parent._child_jobs)} child jobs failed"
        parent._mark_stopped(success=not failed)
        self._emit_job_change(parent)

    def _retry_action(self, job: Any, reason: str, exit_code: int | None) -> str:
        """Evaluate the job definition's retryStrategy.evaluateOnExit the way Batch does."""
        strategy = job.job_definition.retry_strategy or {}
        for rule in strategy.get("evaluateOnExit") or []:
            if "onStatusReason" in rule and not fnmatch.fnmatchcase(reason, rule["onStatusReason"]):
                continue
            if "onReason" in rule and not fnmatch.fnmatchcase(reason, rule["onReason"]):
                continue
            if "onExitCode" in rule and not fnmatch.fnmatchcase(str(exit_code), rule["onExitCode"]):
                continue
            return str(rule["action"]).upper()
        return "RETRY"  # a failure that matches no rule is retried (Batch's documented default)

    def _run_job(self, job: Any) -> None:
        strategy = job.job_definition.retry_strategy or {}
        attempts_allowed = int(strategy.get("attempts", 1))
        while True:
            if job.stop:
                job._mark_stopped(success=False)
                self._emit_job_change(job)
                return
            exit_code, reason = self._run_attempt(job)
            if exit_code == 0:
                job.exit_code = 0
                job._mark_stopped(success=True)
                self._emit_job_change(job)
                return
            job.exit_code = exit_code
            can_retry = not job.stop and len(job.attempts) < attempts_allowed
            if can_retry and self._retry_action(job, reason, exit_code) == "RETRY":
                self._log(f"job {job.job_name} attempt {len(job.attempts)} failed ({reason}); retrying")
                job.status = "RUNNABLE"
                self._emit_job_change(job)
                continue
            job.job_stopped_reason = reason
            job._mark_stopped(success=False)
            self._emit_job_change(job)
            return

    def _job_command(self, job: Any) -> list[str]:
        container = job.job_definition.container_properties or {}
        command = list(job.container_overrides.get("command") or container.get("command") or [])
        container_paths = [mount["containerPath"] for mount in container.get("mountPoints") or []]
        resolved = self.host_command(job._add_parameters_to_command(command), container_paths)
        failure = self.simulated_failures.get(self._job_age(job))
        if failure is not None:
            message = f"agesweep local: simulated application error for age {failure.age}"
            resolved = [sys.executable, "-c", f"import sys; print({message!r}); sys.exit({failure.exit_code})"]
        return resolved

    def host_command(self, command: list[str], container_paths: list[str]) -> list[str]:
        """A container command as this machine runs it: mounted paths (e.g. /data) mapped onto the
        local data folder, and `python` as this interpreter (the image's Python)."""
        resolved = []
        for part in command:
            for container_path in container_paths:
                root = container_path.rstrip("/")
                if part == container_path or part.startswith(root + "/"):
                    part = str(self.data_dir) + part[len(root):]
                    break
            resolved.append(part)
        if resolved and resolved[0] in {"python", "python3"}:
            resolved[0] = sys.executable
        return resolved

    def _job_environment(self, job: Any) -> dict[str, str]:
        container = job.job_definition.container_properties or {}
        env = {item["name"]: item["value"] for item in container.get("environment") or []}
        env.update({item["name"]: item["value"] for item in job.container_overrides.get("environment") or []})
        index = (job.array_properties or {}).get("index")
        env.update(
            {
                "AWS_BATCH_JOB_ID": job.job_id,
                "AWS_BATCH_JOB_ATTEMPT": str(len(job.attempts)),
                "AWS_BATCH_JQ_NAME": job.job_queue.name,
                "AWS_BATCH_CE_NAME": f"{self.pseudo.stack_name}-local-processes",
                "AGESWEEP_JOB_DEFINITION": job.job_definition.arn,
            }
        )
        if index is not None:
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        base = {key: value for key, value in os.environ.items() if not key.startswith(("POWERTOOLS_", "AGESWEEP_"))}
        return {
            **base,
            **env,
            **_FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.pseudo.region,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(self.root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONUNBUFFERED": "1",
        }

    def _job_age(self, job: Any) -> int | None:
        with contextlib.suppress(KeyError, ValueError):
            return int(job.parameters["age"])
        return None

    def _run_attempt(self, job: Any) -> tuple[int, str]:
        """One attempt: a local process under the job's timeout, stoppable by TerminateJob."""
        job.status = "STARTING"
        job.job_started_at = dt.datetime.now()
        job.log_stream_name = job._stream_name
        job._start_attempt()
        attempt = len(job.attempts)
        self._emit_job_change(job)
        command = self._job_command(job)
        env = self._job_environment(job)
        log_path = self.workdir / "logs" / f"{job.job_id.replace(':', '_')}-attempt{attempt}.log"
        timeout = job._get_attempt_duration()
        interruption = self.spot_interruptions.get(self._job_age(job)) if attempt == 1 else None
        started = time.monotonic()
        with log_path.open("wb") as log:
            try:
                process = subprocess.Popen(command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT)
            except OSError as error:
                return 127, f"CannotStartContainerError: {error}"
            self._processes[job.job_id] = process
            job.status = "RUNNING"
            self._emit_job_change(job)
            reason = "Essential container in task exited"
            while process.poll() is None:
                elapsed = time.monotonic() - started
                stop_reason = None
                if job.stop:
                    stop_reason = job.job_stopped_reason or "Terminated by user"
                elif timeout and elapsed > timeout:
                    stop_reason = "Job attempt duration exceeded timeout"
                elif interruption is not None and interruption.after_output.encode() in log_path.read_bytes():
                    stop_reason = "Host EC2 (instance i-0local) terminated."
                if stop_reason:
                    reason = stop_reason
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(_TERMINATE_GRACE_S)
                    except subprocess.TimeoutExpired:
                        process.kill()
                    break
                time.sleep(0.05)
            exit_code = process.wait()
            self._processes.pop(job.job_id, None)
        self._ship_log(job, log_path)
        job.latest_attempt["container"]["exitCode"] = exit_code
        job.latest_attempt["statusReason"] = reason if exit_code else None
        job.job_stopped_at = dt.datetime.now()
        job.latest_attempt["stoppedAt"] = int(job.job_stopped_at.timestamp() * 1000)
        return exit_code, reason

    def _ship_log(self, job: Any, log_path: Path) -> None:
        """Send the attempt's output to CloudWatch Logs, as the awslogs driver would."""
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines() or ["(no output)"]
        logs = self.client("logs")
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=self.job_log_group, logStreamName=job.log_stream_name)
        now = int(time.time() * 1000)
        for start in range(0, len(lines), 1000):
            logs.put_log_events(
                logGroupName=self.job_log_group,
                logStreamName=job.log_stream_name,
                logEvents=[{"timestamp": now, "message": line} for line in lines[start : start + 1000]],
            )

    def drain_notifications(self) -> list[dict[str, str]]:
        """Every SNS message published to the stack's topic since the last drain, oldest first."""
        sqs = self.client("sqs")
        messages: list[dict[str, str]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self._observer_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                break
            for message in batch:
                body = json.loads(message["Body"])
                messages.append(
                    {"subject": body.get("Subject") or "", "message": body.get("Message", ""), "timestamp": body.get("Timestamp", "")}
                )
                sqs.delete_message(QueueUrl=self._observer_url, ReceiptHandle=message["ReceiptHandle"])
        return sorted(messages, key=lambda item: item["timestamp"])

    def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Wait for background deliveries (alerts, events) started so far to finish."""
        deadline = time.monotonic() + timeout_s
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
