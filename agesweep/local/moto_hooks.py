"""Every change local mode makes to moto, in one place.

moto (pinned exactly in pyproject.toml) runs the real Step Functions definition, but it cannot run
our Lambda code or Batch containers without Docker, and it has a few defects. Each hook below
names the moto target it replaces and why. They patch private names, so
tests/local/test_moto_hooks.py asserts that every target still exists in the pinned version.

Hooks delegate to the active `LocalRuntime` (agesweep.local.cloud.LocalCloud); with none active, moto
behaves as shipped.
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import botocore.session
from moto.awslambda.models import LambdaFunction
from moto.batch.models import BatchBackend, Job
from moto.batch.responses import BatchResponse
from moto.batch_simple.models import BatchSimpleBackend
from moto.events.models import Rule
from moto.events.utils import EventMessageType
from moto.moto_api import state_manager
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (
    StateTaskServiceBatch,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.utilities.arns import parse_arn

from agesweep.local.moto_map_hooks import MAP_TARGETS, hook_iteration_loop, hook_result_writer

# (module object, attribute) pairs that the hooks replace; the existence test reads this list.
PATCHED_TARGETS: list[tuple[type, str]] = [  # replaced, or called by local mode
    (StateTaskService, "_normalise_parameters"),
    (StateTaskService, "_normalise_response"),
    (StateTaskService, "_to_boto_request"),
    (StateTaskService, "_from_boto_response"),
    (StateTaskService, "_get_boto_service_name"),
    (LambdaFunction, "_invoke_lambda"),
    (BatchSimpleBackend, "_mark_job_as_finished"),
    (Job, "_mark_stopped"),
    (Rule, "send_to_targets"),
    (BaseExecutionWorkerCommunication, "terminated"),
    (Environment, "set_error"),
    (BatchBackend, "describe_jobs"),
    (Job, "_get_container_property"),
    (StateTaskServiceBatch, "_build_sync_resolver"),
    (BatchResponse, "submitjob"),
    *MAP_TARGETS,
]

# Longest wait between a .sync Batch task's status checks. moto checks every 0.5 s; with 40 ages
# in flight that is 80 DescribeJobs requests a second, a quarter of a core that a 2-core laptop's
# training jobs then lack. Local mode instead wakes the check when its job ends (AWS's own
# integration is event-driven too), and checks at least this often.
SYNC_POLL_SECONDS = 5.0

# Captured at import, before any patch: a renamed target fails here, loudly, not at run time.
MOTO_ORIGINALS: dict[str, Any] = {f"{owner.__name__}.{name}": getattr(owner, name) for owner, name in PATCHED_TARGETS}


class LocalRuntime(Protocol):
    """What the hooks need from local mode."""

    def invoke_function(self, function: LambdaFunction, event: Any) -> tuple[str, bool, str]: ...

    def start_batch_job(
        self, backend: BatchSimpleBackend, job: Job, include_start_attempt: bool, retry_strategy: Any = None
    ) -> None: ...

    def deliver_to_target(self, rule: Rule, target: dict[str, Any], event: EventMessageType) -> bool: ...

    def execution_terminated(self, execution: Any) -> None: ...

    def wait_for_job_change(self, job_id: str, timeout: float) -> None: ...


_active: LocalRuntime | None = None
_install_lock = threading.Lock()
_installed = False
_service_models: dict[str, Any] = {}


_polled_job: dict[int, str] = {}
_submitting = threading.local()  # the RetryStrategy of the SubmitJob request this thread serves


class _SyncPollClock:
    """Stands in for the `time` module inside moto's callback module: its sleep() ends early when
    the Batch job the calling thread polls has changed; everything else is the real `time`."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        job_id = _polled_job.get(threading.get_ident())
        if _active is None or job_id is None:
            time.sleep(seconds)
            return
        _active.wait_for_job_change(job_id, timeout=max(seconds, SYNC_POLL_SECONDS))


def activate(runtime: LocalRuntime | None) -> None:
    """Route moto's hooks to `runtime` (None restores moto's own behaviour)."""
    global _active
    install()
    _active = runtime


_models_lock = threading.Lock()


def _operation_model(service: str, action: str) -> Any:
    # One load per service: 40 Map iterations start at once, and 40 parallel loads of a botocore
    # model (directory scans + JSON) cost seconds of CPU that the first training jobs then lack.
    with _models_lock:
        model = _service_models.get(service)
        if model is None:
            model = _service_models[service] = botocore.session.get_session().get_service_model(service)
    wanted = action.replace("_", "").lower()
    for name in model.operation_names:
        if name.lower() == wanted:
            return model.operation_model(name)
    raise KeyError(f"{service} has no operation {action}")


def install() -> None:
    """Apply the patches once per process (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
    for hook in _HOOKS:
        hook()


# Each hook below patches one moto target. The assignments need `# type: ignore[method-assign]`
# (or [assignment]/[attr-defined]): moto is typed (py.typed), and mypy rejects assigning to a
# method or module attribute on purpose; replacing it at run time is exactly what a hook does.


def _hook_normalisation() -> None:
    """Defect: StateTaskService._normalise_parameters/_normalise_response are empty stubs in moto
    5.2.5, so optimised integrations (batch:submitJob.sync) send PascalCase keys to boto3
    (TaskFailed `States.Runtime`, cause 'JobName') and return camelCase output instead of the
    PascalCase that Step Functions returns. Fill them from botocore's service model, using the
    converters moto already has (_to_boto_request / _from_boto_response)."""

    def _normalise_parameters(
        self: StateTaskService, parameters: dict[str, Any], boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        service = self._get_boto_service_name(boto_service_name=boto_service_name)
        action = self._get_boto_service_action(service_action_name=service_action_name)
        shape = _operation_model(service, action).input_shape
        if shape is not None:
            self._to_boto_request(parameters, shape)

    def _normalise_response(
        self: StateTaskService, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        service = self._get_boto_service_name(boto_service_name=boto_service_name)
        action = self._get_boto_service_action(service_action_name=service_action_name)
        shape = _operation_model(service, action).output_shape
        if shape is not None:
            self._from_boto_response(response, shape)

    StateTaskService._normalise_parameters = _normalise_parameters  # type: ignore[method-assign]  # the hook itself
    StateTaskService._normalise_response = _normalise_response  # type: ignore[method-assign]  # the hook itself


def _hook_sync_poll() -> None:
    """.sync Batch tasks: remember which job the polling thread waits for, and make the poll's sleep
    return as soon as that job changes (the runtime signals it), SYNC_POLL_SECONDS at most."""
    original = StateTaskServiceBatch._build_sync_resolver

    def _build_sync_resolver(
        self: StateTaskServiceBatch, env: Environment, resource_runtime_part: Any, normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> Callable[[], Any] | None:
        _polled_job[threading.get_ident()] = env.stack[-1]["JobId"]
        return original(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    StateTaskServiceBatch._build_sync_resolver = _build_sync_resolver  # type: ignore[method-assign]  # the hook itself
    # the callback module's `time` becomes a clock whose sleep() a job change ends early
    # attr-defined: to mypy `time` is the module's own (unexported) import; assignment: a clock object
    # stands in for the `time` module, on purpose (test_moto_hooks checks moto still sleeps through it)
    state_task_service_callback.time = _SyncPollClock()  # type: ignore[attr-defined, assignment]


def _hook_lambda() -> None:
    """Lambda without Docker: moto's only container call is LambdaFunction._invoke_lambda(event)
    -> (payload, errored, logs). Run the real handler in-process instead."""
    original = LambdaFunction._invoke_lambda

    @functools.wraps(original)
    def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        if _active is None:
            return original(self, event)
        return _active.invoke_function(self, event)

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]  # the hook itself


def _hook_batch() -> None:
    """Batch without Docker: BatchSimpleBackend marks every job SUCCEEDED at once. Run the job's real
    command as a local process instead (the runtime calls Job._mark_stopped when done)."""
    original = BatchSimpleBackend._mark_job_as_finished

    def _mark_job_as_finished(self: BatchSimpleBackend, include_start_attempt: bool, job: Job) -> None:
        if _active is None:
            return original(self, include_start_attempt, job)
        _active.start_batch_job(self, job, include_start_attempt, getattr(_submitting, "retry_strategy", None))
        return None

    BatchSimpleBackend._mark_job_as_finished = _mark_job_as_finished  # type: ignore[method-assign]  # the hook itself
    # Batch job status is a moto ManagedState that jumps straight to RUNNING when read; local mode
    # sets RUNNABLE/STARTING/RUNNING itself, so progression is left to the runtime.
    state_manager.set_transition(model_name="batch::job", transition={"progression": "manual", "times": 10**9})


def _hook_event_targets() -> None:
    """EventBridge: moto delivers only to Logs/SQS/event-bus targets; Lambda, SNS and Step Functions
    targets raise NotImplementedError, which S3's notification code swallows, so later rules are
    skipped too. Deliver those targets through the runtime."""
    original = Rule.send_to_targets

    def send_to_targets(self: Rule, original_event: EventMessageType, transform_input: bool = True) -> None:
        if _active is None:
            return original(self, original_event, transform_input)
        if not self.event_pattern.matches_event(original_event):
            return None
        for target in list(self.targets):
            service = parse_arn(target["Arn"]).service
            if service in {"lambda", "sns", "states"}:
                _active.deliver_to_target(self, target, copy.deepcopy(original_event))
            else:
                single = copy.copy(self)
                single.targets = [target]
                original(single, original_event, transform_input)
        return None

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]  # the hook itself


def _hook_execution_events() -> None:
    """moto never emits "Step Functions Execution Status Change" events; emit them when an
    execution ends so the alert rules see what AWS would send."""
    original = BaseExecutionWorkerCommunication.terminated

    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original(self)
        if _active is not None:
            _active.execution_terminated(self.execution)

    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]  # the hook itself


def _hook_stopped_stays_stopped() -> None:
    """Defect: StopExecution during a Map makes each iteration raise with ProgramStopped.error (a
    str) where event details are expected; the AttributeError then overwrote the stopped state with
    States.Runtime, so the execution ended FAILED instead of ABORTED. Once stopped, an execution
    stays stopped (as in AWS)."""
    original = Environment.set_error

    def set_error(self: Environment, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return None
        return original(self, error)

    Environment.set_error = set_error  # type: ignore[method-assign]  # the hook itself


def described_job(job: Job) -> dict[str, Any]:
    """A job's description; an array child's carries ``arrayProperties.index``, as on AWS."""
    described = job.describe()
    index = (job.array_properties or {}).get("index")
    if index is not None and "arrayProperties" not in described:
        described["arrayProperties"] = {"index": index}
    return described


def _hook_describe_jobs() -> None:
    """Defect: BatchBackend.describe_jobs iterates self._jobs while SubmitJob (another request
    thread) adds to it: "dictionary changed size during iteration", a 500 that fails the .sync
    task with States.Runtime once many jobs are submitted at once. Iterate a snapshot. An array
    child's description also lacks its ``arrayProperties.index``; add it, as AWS sends it."""

    def describe_jobs(self: BatchBackend, jobs: list[str] | None) -> list[dict[str, Any]]:
        if not jobs:
            return [described_job(job) for job in list(self._jobs.values())]  # list(): atomic snapshot
        found = [self._jobs.get(job_id) for job_id in dict.fromkeys(jobs)]
        if any(job is None for job in found):  # some were given as ARNs
            by_arn = {job.arn: job for job in list(self._jobs.values())}
            found = [self._jobs.get(job_id) or by_arn.get(job_id) for job_id in dict.fromkeys(jobs)]
        return [described_job(job) for job in found if job is not None]

    BatchBackend.describe_jobs = describe_jobs  # type: ignore[method-assign]  # the hook itself


def _hook_container_environment() -> None:
    """Defect: Job._get_container_property("environment") appends AWS_BATCH_JOB_ID (and the job
    definition's variables) to the job's own override list on every DescribeJobs, so each poll of
    a running job makes its description longer. Compute it on a copy."""
    original = Job._get_container_property

    def _get_container_property(self: Job, p: str, default: Any) -> Any:
        if p != "environment":
            return original(self, p, default)
        job_env = [dict(item) for item in self.container_overrides.get("environment") or []]
        names = {item["name"] for item in job_env}
        definition_env = (self.job_definition.container_properties or {}).get("environment") or []
        job_env += [dict(item) for item in definition_env if item["name"] not in names]
        job_env.append({"name": "AWS_BATCH_JOB_ID", "value": self.job_id})
        return job_env

    Job._get_container_property = _get_container_property  # type: ignore[method-assign]  # the hook itself


def _hook_submit_retry_strategy() -> None:
    """moto's SubmitJob ignores the request's RetryStrategy ("not yet implemented"), so every job
    would get its job definition's attempts. The state machine sets them per submission (the spot
    reclaims before on-demand), so hand the request's RetryStrategy to the runtime: SubmitJob reaches
    _mark_job_as_finished in the same request thread."""
    original = BatchResponse.submitjob

    def submitjob(self: BatchResponse) -> str:
        strategy = self._get_param("retryStrategy")
        if strategy and "evaluateOnExit" in strategy:
            strategy = {**strategy, "evaluateOnExit": [dict(rule) for rule in strategy["evaluateOnExit"]]}
        _submitting.retry_strategy = strategy
        try:
            return original(self)
        finally:
            _submitting.retry_strategy = None

    BatchResponse.submitjob = submitjob  # type: ignore[method-assign]  # the hook itself


# In the order install() applies them (the same order as before the split).
_HOOKS: tuple[Callable[[], None], ...] = (
    _hook_sync_poll,
    _hook_normalisation,
    _hook_lambda,
    _hook_batch,
    _hook_event_targets,
    _hook_execution_events,
    _hook_stopped_stays_stopped,
    _hook_describe_jobs,
    _hook_container_environment,
    _hook_submit_retry_strategy,
    hook_iteration_loop,
    hook_result_writer,
)
