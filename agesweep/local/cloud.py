"""The stack of template.yaml on one machine: a moto server, in-process Lambdas, local Batch jobs.

`LocalCloud` is the composition root. It starts moto's server on a free loopback port with the Step
Functions interpreter on, sets the environment (fake credentials, the endpoint), owns the parts, and
serves moto's hooks (agesweep.local.moto_hooks) by delegating to them:

- resources.py   template.yaml → resources on the server (agesweep.local.template reads it)
- lambdas.py     Lambda handlers run in this process
- events.py      EventBridge delivery and the events AWS services emit themselves
- batch_jobs.py  Batch jobs run their job definition's real command as local processes
- schedules.py   scheduled rules fire (every `schedule_interval_s`); EFS mounts map to the data folder
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from pathlib import Path
from typing import Any

from moto.core.config import DefaultConfig
from moto.events.utils import EventMessageType

from agesweep.links import LOCAL_LOGS_ENV
from agesweep.local import moto_hooks
from agesweep.local.batch_jobs import BatchJobs, Chaos, JobEvent, SimulatedFailure, SpotInterruption
from agesweep.local.events import Events
from agesweep.local.lambdas import Lambdas
from agesweep.local.plumbing import FAKE_CREDENTIALS, Plumbing, free_port
from agesweep.local.resources import Deployed, Resources
from agesweep.local.schedules import DEFAULT_INTERVAL_S, Scheduler, with_local_mounts
from agesweep.local.template import Pseudo, StackSpec
from agesweep.preflight import LOCAL_DATA_ENV
from agesweep.settings import LOCAL_ENV

__all__ = ["REPO_ROOT", "Chaos", "JobEvent", "LocalCloud", "SimulatedFailure", "SpotInterruption"]

REPO_ROOT = Path(__file__).resolve().parents[2]


class LocalCloud:
    """One running local cloud. Use as a context manager; one at a time per process."""

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
        schedule_interval_s: float = DEFAULT_INTERVAL_S,
        chaos: Chaos | None = None,
        parameters: dict[str, str] | None = None,
    ) -> None:
        """`parameters`: template parameter overrides (e.g. AllowedSecretArns), as `sam deploy` takes them."""
        self.root = root
        self.workdir = workdir
        self.data_dir = data_dir
        self.pseudo = pseudo or Pseudo(region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.lambda_log = workdir / "lambda.log"
        compute_environment = f"{self.pseudo.stack_name}-local-processes"
        self.plumbing = Plumbing(self.endpoint, self.pseudo.region, self.lambda_log)
        self.resources = Resources(self.plumbing, self.pseudo, compute_environment, parameters)
        self.lambdas = Lambdas(self.plumbing)
        self.events = Events(self.plumbing, self.pseudo, self.lambdas)
        self.batch = BatchJobs(
            self.plumbing,
            root=root,
            data_dir=data_dir,
            logs_dir=workdir / "logs",
            workers=workers,
            region=self.pseudo.region,
            compute_environment_name=compute_environment,
            emit_event=self.events.put_aws_event,
            spot_interruptions=spot_interruptions,
            simulated_failures=simulated_failures,
            chaos=chaos,
        )
        self.scheduler = Scheduler(self.pseudo, self.events.deliver_now, schedule_interval_s)
        # the simulations stay editable between runs (a test clears them before a rerun)
        self.spot_interruptions = self.batch.spot_interruptions
        self.simulated_failures = self.batch.simulated_failures
        self.job_events: list[JobEvent] = self.batch.job_events
        self._deployed: Deployed | None = None
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_config: DefaultConfig = {}
        self._saved_excepthook = threading.excepthook

    # ------------------------------------------------------------------ what callers read
    @property
    def deployed(self) -> Deployed:
        if self._deployed is None:
            raise RuntimeError("the local cloud is not started")
        return self._deployed

    @property
    def spec(self) -> StackSpec:
        return self.deployed.spec

    @property
    def bucket(self) -> str:
        return self.deployed.bucket

    @property
    def topic_arn(self) -> str:
        return self.deployed.topic_arn

    @property
    def state_machine_arn(self) -> str:
        return self.deployed.state_machine_arn

    @property
    def job_queue_arn(self) -> str:
        return self.deployed.job_queue_arn

    @property
    def job_definition_arn(self) -> str:
        return self.deployed.job_definition_arn

    @property
    def names(self) -> dict[str, str]:
        """The names a client of `--serve` needs (written to endpoint.json)."""
        deployed = self.deployed
        return {
            "bucket": deployed.bucket,
            "topic": deployed.topic_arn,
            "state_machine": deployed.state_machine_arn,
            "job_queue": deployed.job_queue_arn,
            "job_definition": deployed.job_definition_arn,
            "endpoint": self.endpoint,
        }

    def client(self, service: str) -> Any:
        """A boto3 client of the local endpoint (cached)."""
        return self.plumbing.client(service)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        self.plumbing.open_log()
        # moto's interpreter leaves helper threads that can die noisily (e.g. its WaitForTaskToken
        # listener on .sync tasks); keep their tracebacks in the log instead of the terminal
        self._saved_excepthook = threading.excepthook
        threading.excepthook = self.plumbing.thread_exception
        self._set_env({
            **FAKE_CREDENTIALS,
            "AWS_DEFAULT_REGION": self.pseudo.region,
            "AWS_REGION": self.pseudo.region,
            "AWS_ENDPOINT_URL": self.endpoint,
            "MOTO_PORT": str(self.port),  # the interpreter calls services back on this port
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_DEV": "false",
            LOCAL_ENV: "1",  # the in-process Lambdas: costs "if run on AWS", log files not the console
            LOCAL_LOGS_ENV: str(self.workdir / "logs"),
            LOCAL_DATA_ENV: str(self.data_dir),  # the validate Lambda checks /data inputs here
        })
        self._configure_moto()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        moto_hooks.activate(self)
        self._deployed = self.resources.create(
            self.resources.read_spec(self.root), lambda name, fn: self.lambdas.register(name, with_local_mounts(fn, self.data_dir))
        )
        self.batch.job_log_group = self._deployed.job_log_group
        self.batch.queue_capacity = dict(self._deployed.queue_capacity)
        self.batch.start_workers()  # a compute environment of `workers` job slots
        self.scheduler.start()  # e.g. the EFS watcher, looking at <data>/manifests/

    def stop(self) -> None:
        self.scheduler.stop()
        self.batch.stop()
        moto_hooks.activate(None)
        if self._server is not None:
            self._server.stop()
            self._server = None
        from moto.core.base_backend import BackendDict
        from moto.core.config import default_user_config
        from moto.core.model_instances import reset_model_data

        BackendDict.reset()  # a later local cloud in this process starts from an empty account
        reset_model_data()
        default_user_config.update(self._saved_config)
        self.lambdas.close()
        threading.excepthook = self._saved_excepthook
        self.lambdas.release_powertools_loggers()
        self.plumbing.close_log()
        self._restore_env()

    def _configure_moto(self) -> None:
        from moto.core.config import default_user_config

        self._saved_config = {
            "stepfunctions": copy.deepcopy(default_user_config["stepfunctions"]),
            "batch": copy.deepcopy(default_user_config["batch"]),
            "lambda": copy.deepcopy(default_user_config["lambda"]),
        }
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        default_user_config["batch"] = {"use_docker": False}
        default_user_config["lambda"] = {"use_docker": True}  # _invoke_lambda is replaced by a hook
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # the interpreter logs every caught state error with its AST; the history has them
        logging.getLogger("moto").setLevel(logging.CRITICAL)

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

    # ------------------------------------------------------------------ moto_hooks.LocalRuntime
    def invoke_function(self, function: Any, event: Any) -> tuple[str, bool, str]:
        return self.lambdas.invoke(function.function_name, function.function_arn, event)

    def start_batch_job(self, backend: Any, job: Any, include_start_attempt: bool, retry_strategy: Any = None) -> None:
        self.batch.start_batch_job(backend, job, include_start_attempt, retry_strategy)

    def deliver_to_target(self, rule: Any, target: dict[str, Any], event: EventMessageType) -> bool:
        return self.events.deliver_to_target(rule, target, event)

    def execution_terminated(self, execution: Any) -> None:
        self.events.execution_terminated(execution)

    def wait_for_job_change(self, job_id: str, timeout: float) -> None:
        self.batch.wait_for_job_change(job_id, timeout)

    # ------------------------------------------------------------------ conveniences
    def put_aws_event(self, source: str, detail_type: str, resources: list[str], detail: dict[str, Any]) -> None:
        """Deliver an event that an AWS service itself would emit to the default bus."""
        self.events.put_aws_event(source, detail_type, resources, detail)

    def host_command(self, command: list[str], container_paths: list[str]) -> list[str]:
        """A container command as this machine runs it (see BatchJobs.host_command)."""
        return self.batch.host_command(command, container_paths)

    def drain_notifications(self) -> list[dict[str, str]]:
        """Every SNS message published to the stack's topic since the last drain, oldest first."""
        return self.events.drain_notifications(self.deployed.observer_url)

    def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Wait for background deliveries (alerts, events) started so far to finish."""
        self.plumbing.wait_idle(timeout_s)
