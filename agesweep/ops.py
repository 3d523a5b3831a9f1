"""Operating a deployed sweep stack: submit, status, runs, retry, cancel, logs — boto3, no printing.

Every resource is found from the CloudFormation stack's Outputs (`--stack`), so the same calls
work against a deployed stack and against `agesweep local --serve` (its moto server carries an
`agesweep-local` stack with the same Outputs; point boto3 at it with `AWS_ENDPOINT_URL`).
Where a sweep stands is read by agesweep.tracking; this module adds what an operator needs on
top: run lookup, ETA, stuck-job diagnosis, cancellation and log streams.

Every failure an operator can cause or fix (no credentials, no region, unknown stack or run)
is raised as `OpsError` with a one-line message; the CLI prints it and exits 2.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from agesweep import tracking
from agesweep.exit_codes import ExitCode
from agesweep.links import log_url
from agesweep.manifest import EFS_ROOT, MAX_MANIFEST_BYTES
from agesweep.plan import validate_and_plan
from agesweep.runs import run_id_for
from agesweep.settings import Settings

DEFAULT_STACK = "agesweep"
MANIFEST_PREFIX = "manifests/"
DEFAULT_STUCK_AFTER_S = 600.0
DEFAULT_START_WAIT_S = 60.0
# Batch allows SubmitJob/DescribeJobs at modest rates; adaptive mode backs off client-side too.
RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10})

# CloudFormation output → Stack attribute (template.yaml's Outputs).
_OUTPUTS = {
    "ManifestBucketName": "bucket",
    "StateMachineArn": "state_machine_arn",
    "JobQueueArn": "job_queue_arn",
    "JobDefinitionArn": "job_definition_arn",
    "NotificationTopicArn": "topic_arn",
    "JobLogGroupName": "log_group",
}
# Service Quotas codes of the EC2 vCPU limits that most often hold Batch jobs in RUNNABLE.
EC2_VCPU_QUOTAS = {
    "L-34B43A08": "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
    "L-1216C47A": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
}
_CREDENTIAL_ERRORS = {
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
    "InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure",
}


class OpsError(Exception):
    """A problem the operator can fix, explained in one line (the CLI exits 2)."""

    exit_code = ExitCode.INVALID


class StackNotFound(OpsError):
    pass


class RunNotFound(OpsError):
    pass


def explain(exc: BaseException) -> str:
    """One line for a botocore error: what went wrong and what to do about it."""
    if isinstance(exc, OpsError):
        return str(exc)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return (
            "no AWS credentials found: set AWS_PROFILE (and run `aws sso login`), or export "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}: wrong --region, or is AWS_ENDPOINT_URL stale?"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", "")
        if code in _CREDENTIAL_ERRORS:
            return f"AWS rejected the credentials ({code}): {message} — refresh them (aws sso login) or check the region"
        if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
            return f"access denied ({exc.operation_name}): {message}"
        return f"{exc.operation_name} failed: {code}: {message}"
    if isinstance(exc, BotoCoreError):
        return f"AWS call failed: {exc}"
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore errors into OpsError (one readable line; never a traceback)."""
    try:
        yield
    except OpsError:
        raise
    except (BotoCoreError, ClientError) as exc:
        raise OpsError(explain(exc)) from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# ------------------------------------------------------------------------------------ clients
class Aws:
    """One boto3 session and its clients; every client retries throttling with adaptive backoff.

    The endpoint comes from boto3's own configuration (`AWS_ENDPOINT_URL`, profiles), so the same
    code reaches AWS or local mode's moto server.
    """

    def __init__(self, region: str | None = None, session: boto3.session.Session | None = None) -> None:
        self.session = session or boto3.session.Session(region_name=region)
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str:
        if not self.session.region_name:
            raise OpsError(explain(NoRegionError()))
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region, config=RETRY_CONFIG)
        return self._clients[service]


@dataclass
class Stack:
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
    aws: Aws = field(repr=False, compare=False)

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    def execution_arn(self, run: str) -> str:
        """RUN may be a run id (= execution name) or a full execution ARN."""
        return run if run.startswith("arn:") else tracking.execution_arn_for(self.state_machine_arn, run)


def discover_stack(name: str = DEFAULT_STACK, region: str | None = None, aws: Aws | None = None) -> Stack:
    """Read the stack's Outputs; a missing stack or output is an OpsError naming what to check."""
    aws = aws or Aws(region)
    with aws_errors():
        cfn = aws.client("cloudformation")
        try:
            stacks = cfn.describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if _code(exc) == "ValidationError" and "does not exist" in str(exc):
                raise StackNotFound(
                    f"stack {name!r} not found in {aws.region}: check --stack / AGESWEEP_STACK and --region "
                    "(local mode: `agesweep local --serve`, AWS_ENDPOINT_URL, --stack agesweep-local)"
                ) from exc
            raise
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs") or []}
    missing = [key for key in _OUTPUTS if key not in outputs]
    if missing:
        raise OpsError(f"stack {name!r} has no output {', '.join(missing)}: is it an agesweep stack (template.yaml)?")
    values = {attribute: outputs[key] for key, attribute in _OUTPUTS.items()}
    return Stack(name=name, region=aws.region, outputs=outputs, aws=aws, **values)


def describe_run(stack: Stack, run: str) -> dict[str, Any]:
    """DescribeExecution of a run; RunNotFound when this stack's state machine never ran it."""
    sfn = stack.client("stepfunctions")
    with aws_errors():
        try:
            return dict(sfn.describe_execution(executionArn=stack.execution_arn(run)))
        except ClientError as exc:
            if _code(exc) in {"ExecutionDoesNotExist", "InvalidArn"}:
                raise RunNotFound(
                    f"no run {run!r} in stack {stack.name!r} (list them with `agesweep runs --stack {stack.name}`)"
                ) from exc
            raise


def _epoch(value: Any) -> float | None:
    """boto3 datetimes (and moto's) → epoch seconds."""
    if value is None:
        return None
    return float(value.timestamp()) if hasattr(value, "timestamp") else float(value)


# ------------------------------------------------------------------------------------ submit
def read_manifest(path: Path) -> bytes:
    """The file's bytes, at most the manifest size limit plus one (validation reports the excess)."""
    try:
        with path.open("rb") as fh:
            return fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise OpsError(f"cannot read manifest {path}: {exc.strerror or exc}") from exc


def validate_manifest(raw: bytes, name: str) -> dict[str, Any]:
    """Validate and plan locally, as `agesweep validate` does (raises ManifestInvalid)."""
    run_id = run_id_for("local", name, hashlib.sha256(raw).hexdigest())
    return validate_and_plan(raw, source_name=name, stack=Settings.from_env(), run_id=run_id,
                             manifest_location={"key": name}).to_state()


def efs_local_path(efs_path: str, mount: Path) -> Path:
    """Where an EFS path as jobs see it (/data/…) is on this machine (EFS mounted at `mount`)."""
    path = PurePosixPath(efs_path)
    root = PurePosixPath(EFS_ROOT)
    if not path.is_absolute() or (path != root and root not in path.parents) or ".." in path.parts:
        raise OpsError(f"--efs {efs_path}: give the manifest's path on EFS as jobs see it, under {EFS_ROOT}/")
    return mount.joinpath(*path.relative_to(root).parts)


@dataclass
class Submission:
    """One submitted manifest version and the run it started (or had already started)."""

    run_id: str
    execution_arn: str
    bucket: str
    key: str
    version_id: str | None
    sha256: str
    source: str
    uploaded: bool  # False: the same bytes were already the current version; its run is reported

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wait_for_execution(stack: Stack, execution_arn: str, timeout_s: float, poll_s: float = 0.5) -> dict[str, Any]:
    """Wait (bounded) for EventBridge → start_run to create the execution."""
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while True:
        with aws_errors():
            try:
                return dict(sfn.describe_execution(executionArn=execution_arn))
            except ClientError as exc:
                if _code(exc) != "ExecutionDoesNotExist":
                    raise
        if time.monotonic() >= deadline:
            raise OpsError(
                f"the manifest was uploaded but no execution {execution_arn.rsplit(':', 1)[-1]} started within "
                f"{timeout_s:.0f} s: check the StartRun function's log and the stack's dead-letter queue "
                f"({stack.outputs.get('DeadLetterQueueUrl', 'DeadLetterQueueUrl output')})"
            )
        time.sleep(poll_s)


def submit_manifest(
    stack: Stack,
    raw: bytes,
    file_name: str,
    *,
    source: str,
    force: bool = False,
    wait_s: float = DEFAULT_START_WAIT_S,
) -> Submission:
    """Upload to manifests/<file_name> and return the run its version starts.

    A run is one manifest *version* (run_id = digest of bucket, key, VersionId). When the object
    at that key already holds the same bytes (its `sha256` metadata) and that version's run
    exists, nothing is uploaded and that run is returned; `force` uploads anyway (a new run).
    """
    key = MANIFEST_PREFIX + file_name
    sha = hashlib.sha256(raw).hexdigest()
    s3 = stack.client("s3")
    if not force:
        with aws_errors():
            try:
                head = s3.head_object(Bucket=stack.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) not in {"404", "NoSuchKey", "NotFound"}:
                    raise
                head = None
        if head is not None and (head.get("Metadata") or {}).get("sha256") == sha:
            version = head.get("VersionId")
            run_id = run_id_for(stack.bucket, key, version)
            with contextlib.suppress(RunNotFound):
                describe_run(stack, run_id)
                return Submission(run_id, stack.execution_arn(run_id), stack.bucket, key, version, sha,
                                  (head.get("Metadata") or {}).get("source", source), uploaded=False)
    with aws_errors():
        version = s3.put_object(
            Bucket=stack.bucket, Key=key, Body=raw, ContentType="application/yaml",
            Metadata={"sha256": sha, "source": source},
        ).get("VersionId")
    run_id = run_id_for(stack.bucket, key, version)
    execution_arn = stack.execution_arn(run_id)
    wait_for_execution(stack, execution_arn, wait_s)
    return Submission(run_id, execution_arn, stack.bucket, key, version, sha, source, uploaded=True)


# ------------------------------------------------------------------------------------ status
@dataclass
class StuckJob:
    """A job waiting in RUNNABLE longer than the threshold, and why it may be waiting."""

    age: int
    job_id: str | None
    waiting_s: float
    vcpus: float | None
    memory_mib: int | None
    causes: list[str]


@dataclass
class RunStatus:
    """Where one run stands: the execution, one row per age, totals, ETA and stuck jobs."""

    run_id: str
    execution_arn: str
    status: str
    started_at: float | None
    stopped_at: float | None
    error: str | None
    cause: str | None
    region: str
    log_group: str
    max_concurrency: int | None
    rows: list[tracking.AgeProgress]
    counts: dict[str, int]
    eta_s: float | None
    stuck: list[StuckJob] = field(default_factory=list)
    compute_environments: list[dict[str, Any]] = field(default_factory=list)
    collated: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.status != "RUNNING"

    @property
    def exit_code(self) -> int:
        """0 succeeded with no failed age, 1 failed/aborted/timed out or an age failed, 3 running."""
        if not self.finished:
            return ExitCode.RUNNING
        if self.status == "SUCCEEDED" and not self.counts.get("FAILED") and not (self.collated or {}).get("failed"):
            return ExitCode.OK
        return ExitCode.SOME_FAILED

    def elapsed_s(self, now: float | None = None) -> float | None:
        if self.started_at is None:
            return None
        return (self.stopped_at or now or time.time()) - self.started_at

    def log_url(self, row: tracking.AgeProgress) -> str | None:
        return log_url(self.log_group, row.log_stream, self.region)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "execution_arn": self.execution_arn,
            "status": self.status,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "elapsed_s": self.elapsed_s(),
            "error": self.error,
            "cause": self.cause,
            "exit_code": self.exit_code,
            "counts": self.counts,
            "eta_s": self.eta_s,
            "ages": [{**row.to_dict(), "log_url": self.log_url(row)} for row in self.rows],
            "stuck": [asdict(job) for job in self.stuck],
            "compute_environments": self.compute_environments,
            "collated": self.collated,
        }


def eta_seconds(rows: list[tracking.AgeProgress], concurrency: int | None) -> float | None:
    """mean duration of the finished ages × ages left ÷ ages that run at once; None until one finished."""
    durations = [row.elapsed_s() for row in rows if row.status in tracking.TERMINAL_STATUSES and row.stopped_at]
    durations = [d for d in durations if d is not None]
    remaining = sum(row.status not in tracking.TERMINAL_STATUSES for row in rows)
    if remaining == 0:
        return 0.0
    if not durations:
        return None
    at_once = max(1, min(concurrency or remaining, remaining))
    return sum(durations) / len(durations) * math.ceil(remaining / at_once)


def _requested(item: dict[str, Any] | None, job: dict[str, Any]) -> tuple[float | None, int | None]:
    """vCPUs and MiB a job asks for: the plan's override, else what Batch reports for the job."""
    requirements = list(((item or {}).get("container_overrides") or {}).get("ResourceRequirements") or [])
    requirements += [
        {"Type": r.get("type"), "Value": r.get("value")}
        for r in (job.get("container") or {}).get("resourceRequirements") or []
    ]
    vcpus = memory = None
    for requirement in requirements:
        if requirement["Type"] == "VCPU" and vcpus is None:
            vcpus = float(requirement["Value"])
        if requirement["Type"] == "MEMORY" and memory is None:
            memory = int(requirement["Value"])
    container = job.get("container") or {}
    return vcpus or container.get("vcpus"), memory or container.get("memory")


def _runnable_since(job: dict[str, Any]) -> float | None:
    """When the job (or its retry) last became runnable: creation, or the last attempt's stop."""
    times = [job.get("createdAt")] + [attempt.get("stoppedAt") for attempt in job.get("attempts") or []]
    known = [t for t in times if t]
    return max(known) / 1000.0 if known else None


def compute_environments(stack: Stack, job_queue: str) -> list[dict[str, Any]]:
    """The queue's compute environments in order, with state, status and capacity."""
    batch = stack.client("batch")
    with aws_errors():
        queues = batch.describe_job_queues(jobQueues=[job_queue])["jobQueues"]
        if not queues:
            return []
        order = sorted(queues[0].get("computeEnvironmentOrder") or [], key=lambda o: o.get("order", 0))
        arns = [o["computeEnvironment"] for o in order]
        described = {ce["computeEnvironmentArn"]: ce for ce in batch.describe_compute_environments(computeEnvironments=arns)["computeEnvironments"]} if arns else {}
    result: list[dict[str, Any]] = []
    for arn in arns:
        ce = described.get(arn, {"computeEnvironmentArn": arn})
        resources = ce.get("computeResources") or {}
        result.append({
            "name": ce.get("computeEnvironmentName", arn.rsplit("/", 1)[-1]),
            "arn": arn,
            "type": ce.get("type"),
            "state": ce.get("state"),
            "status": ce.get("status"),
            "status_reason": ce.get("statusReason"),
            "capacity": resources.get("type"),
            "allocation_strategy": resources.get("allocationStrategy"),
            "min_vcpus": resources.get("minvCpus"),
            "desired_vcpus": resources.get("desiredvCpus"),
            "max_vcpus": resources.get("maxvCpus"),
            "instance_types": list(resources.get("instanceTypes") or []),
        })
    return result


def _instance_type_limits(stack: Stack, types: list[str]) -> dict[str, tuple[int, int]]:
    """(vCPUs, MiB) of exact instance types (families and `optimal` are left out); best effort."""
    exact = [t for t in types if "." in t]
    if not exact:
        return {}
    with contextlib.suppress(BotoCoreError, ClientError):
        found = stack.client("ec2").describe_instance_types(InstanceTypes=exact)["InstanceTypes"]
        return {
            t["InstanceType"]: (int(t["VCpuInfo"]["DefaultVCpus"]), int(t["MemoryInfo"]["SizeInMiB"]))
            for t in found
        }
    return {}


def ec2_vcpu_quotas(stack: Stack) -> dict[str, float]:
    """The account's EC2 vCPU quotas (spot / on-demand standard) where Service Quotas answers."""
    quotas: dict[str, float] = {}
    for code in EC2_VCPU_QUOTAS:
        with contextlib.suppress(BotoCoreError, ClientError, KeyError):
            quotas[code] = float(stack.client("service-quotas").get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"])
    return quotas


def stuck_causes(
    vcpus: float | None,
    memory_mib: int | None,
    environments: list[dict[str, Any]],
    instance_limits: dict[str, tuple[int, int]],
    quotas: dict[str, float],
) -> list[str]:
    """Likely reasons a job stays RUNNABLE, most specific first (pure: tested without AWS)."""
    causes: list[str] = []
    if not environments:
        causes.append("the job queue has no compute environment")
    managed = [ce for ce in environments if ce.get("type") == "MANAGED"]
    for ce in environments:
        name = ce["name"]
        if ce.get("state") != "ENABLED":
            causes.append(f"compute environment {name} is {ce.get('state')}: enable it (UpdateComputeEnvironment state=ENABLED)")
        if ce.get("status") == "INVALID":
            causes.append(f"compute environment {name} is INVALID: {ce.get('status_reason') or 'see its status reason'}")
        if ce.get("type") == "UNMANAGED":
            causes.append(f"compute environment {name} is UNMANAGED: jobs start only when its own instances (or local mode's workers) are free")
        max_vcpus = ce.get("max_vcpus")
        if ce.get("type") == "MANAGED" and vcpus and max_vcpus is not None and max_vcpus < vcpus:
            causes.append(f"the job asks {vcpus:g} vCPUs but {name} allows at most maxvCpus {max_vcpus}: it can never start there (raise MaxvCpus or lower the manifest's vcpus)")
        elif ce.get("type") == "MANAGED" and max_vcpus and ce.get("desired_vcpus") is not None and ce["desired_vcpus"] >= max_vcpus:
            causes.append(f"{name} is at maxvCpus ({max_vcpus}): jobs wait for running ones to finish")
        sizes = [instance_limits[t] for t in ce.get("instance_types") or [] if t in instance_limits]
        if sizes and vcpus and max(v for v, _ in sizes) < vcpus:
            causes.append(f"no instance type of {name} ({', '.join(ce['instance_types'])}) has {vcpus:g} vCPUs")
        if sizes and memory_mib and max(m for _, m in sizes) < memory_mib:
            causes.append(f"no instance type of {name} has {memory_mib} MiB (leave ~5% for the ECS agent)")
        if ce.get("capacity") in {"SPOT", "FARGATE_SPOT"}:
            causes.append(f"{name} is SPOT: spot capacity for {', '.join(ce.get('instance_types') or ['its instance types'])} may be short; more instance types help")
    for code, title in EC2_VCPU_QUOTAS.items():
        value = quotas.get(code)
        if value is not None and vcpus and value < vcpus:
            causes.append(f"EC2 quota {code} ({title}) is {value:g} vCPUs, below the job's {vcpus:g}: request an increase")
    if managed:
        known = ", ".join(f"{code} = {quotas[code]:g}" for code in EC2_VCPU_QUOTAS if code in quotas)
        causes.append(
            "EC2 vCPU quotas (Service Quotas "
            + (known if known else " / ".join(EC2_VCPU_QUOTAS))
            + ") may stop the compute environment from launching instances: see its scaling activity"
        )
    return causes


def run_status(stack: Stack, run: str, stuck_after_s: float = DEFAULT_STUCK_AFTER_S, now: float | None = None) -> RunStatus:
    """One snapshot of a run, from the execution history and Batch (agesweep.tracking)."""
    now = now or time.time()
    description = describe_run(stack, run)
    sfn, batch = stack.client("stepfunctions"), stack.client("batch")
    execution_arn = description["executionArn"]
    with aws_errors():
        history = tracking.history_events(sfn, execution_arn)
        plan = tracking.plan_from_history(history)
        jobs = tracking.list_run_jobs(batch, plan) if plan else []
    rows = tracking.age_progress(plan, jobs) if plan else []
    status = RunStatus(
        run_id=description["name"],
        execution_arn=execution_arn,
        status=description["status"],
        started_at=_epoch(description.get("startDate")),
        stopped_at=_epoch(description.get("stopDate")),
        error=description.get("error"),
        cause=description.get("cause"),
        region=stack.region,
        log_group=stack.log_group,
        max_concurrency=(plan or {}).get("max_concurrency"),
        rows=rows,
        counts=dict(tracking.totals(rows)),
        eta_s=eta_seconds(rows, (plan or {}).get("max_concurrency")) if rows and description["status"] == "RUNNING" else None,
        collated=tracking.collated_from_history(history),
    )
    if status.finished:
        return status
    by_id = {job["jobId"]: job for job in jobs}
    items = {item["job_name"]: item for item in (plan or {}).get("items", [])}
    waiting = []
    for row in rows:
        job = by_id.get(row.job_id or "")
        if job is None or not (row.status == "RUNNABLE" or row.children.get("RUNNABLE")):
            continue
        since = _runnable_since(job)
        if since is not None and now - since >= stuck_after_s:
            waiting.append((row, job, now - since))
    if waiting:
        status.compute_environments = compute_environments(stack, (plan or {}).get("job_queue") or stack.job_queue_arn)
        types = sorted({t for ce in status.compute_environments for t in ce["instance_types"]})
        limits = _instance_type_limits(stack, types)
        quotas = ec2_vcpu_quotas(stack) if any(ce.get("type") == "MANAGED" for ce in status.compute_environments) else {}
        for row, job, waited in waiting:
            vcpus, memory = _requested(items.get(row.job_name), job)
            status.stuck.append(StuckJob(row.age, row.job_id, round(waited, 1), vcpus, memory,
                                         stuck_causes(vcpus, memory, status.compute_environments, limits, quotas)))
    return status


def watch_run(
    stack: Stack,
    run: str,
    interval_s: float = 5.0,
    stuck_after_s: float = DEFAULT_STUCK_AFTER_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[RunStatus]:
    """Snapshots until the execution ends (the last one is final)."""
    while True:
        status = run_status(stack, run, stuck_after_s)
        yield status
        if status.finished:
            return
        sleep(interval_s)


# ------------------------------------------------------------------------------------ runs
@dataclass
class RunSummary:
    run_id: str
    status: str
    started_at: float | None
    stopped_at: float | None
    total: int | None = None
    succeeded: int | None = None
    failed: int | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.stopped_at or time.time()) - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duration_s": self.duration_s}


def read_summary(stack: Stack, run_id: str) -> dict[str, Any] | None:
    """runs/<run_id>/summary.json from the stack bucket, None before collation (or without one)."""
    with aws_errors():
        try:
            body = stack.client("s3").get_object(Bucket=stack.bucket, Key=f"runs/{run_id}/summary.json")["Body"].read()
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
    return dict(json.loads(body))


def list_runs(stack: Stack, limit: int = 20) -> list[RunSummary]:
    """The newest executions of the stack's state machine, with (age, slice) counts once collated."""
    sfn = stack.client("stepfunctions")
    executions: list[dict[str, Any]] = []
    with aws_errors():
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=stack.state_machine_arn, PaginationConfig={"MaxItems": limit, "PageSize": min(limit, 100)}
        ):
            executions.extend(page["executions"])
    executions.sort(key=lambda e: _epoch(e.get("startDate")) or 0.0, reverse=True)
    runs = []
    for execution in executions[:limit]:
        run = RunSummary(execution["name"], execution["status"], _epoch(execution.get("startDate")), _epoch(execution.get("stopDate")))
        if run.status != "RUNNING":
            summary = read_summary(stack, run.run_id)
            if summary is not None:
                run.total, run.succeeded, run.failed = summary.get("total"), summary.get("succeeded"), summary.get("failed")
        runs.append(run)
    return runs


# ------------------------------------------------------------------------------------ retry
def retry_manifests(stack: Stack, run: str) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each document of runs/<run_id>/retry-manifest.yaml; [] when nothing failed.

    Each document is named after its own run_name (`<run>-retry.yaml`), which keeps a retry's
    run id readable and makes submitting the same retry twice start one run.
    """
    from agesweep.collation.retry import retry_documents

    description = describe_run(stack, run)
    run_id = description["name"]
    if description["status"] == "RUNNING":
        raise OpsError(f"run {run_id} is still running: its retry manifest is written when it ends")
    with aws_errors():
        try:
            text = stack.client("s3").get_object(Bucket=stack.bucket, Key=f"runs/{run_id}/retry-manifest.yaml")["Body"].read().decode("utf-8")
        except ClientError as exc:
            if _code(exc) not in {"NoSuchKey", "404", "NotFound"}:
                raise
            raise OpsError(
                f"run {run_id} has no retry manifest ({description['status']}"
                + (f": {description.get('error')}" if description.get("error") else "")
                + "): it ended before collation; fix the cause and submit the original manifest again"
            ) from exc
    documents = []
    for document in retry_documents(text):
        name = str((yaml.safe_load(document) or {}).get("run_name") or f"{run_id}-retry")
        documents.append((f"{name}.yaml", document.encode("utf-8")))
    return documents


# ------------------------------------------------------------------------------------ cancel
@dataclass
class CancelResult:
    run_id: str
    execution_status: str  # before the cancel
    stopped: bool
    terminated: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unfinished_jobs(stack: Stack, run: str) -> tuple[dict[str, Any], list[tracking.AgeProgress]]:
    """The execution and the run's jobs that have not finished (what cancel would stop)."""
    description = describe_run(stack, run)
    with aws_errors():
        plan = tracking.plan_from_history(tracking.history_events(stack.client("stepfunctions"), description["executionArn"]))
        rows = tracking.age_progress(plan, tracking.list_run_jobs(stack.client("batch"), plan)) if plan else []
    return description, [row for row in rows if row.job_id and row.status not in tracking.TERMINAL_STATUSES]


def cancel_run(stack: Stack, run: str, reason: str = "Cancelled by agesweep cancel") -> CancelResult:
    """StopExecution (so no further age is submitted), then TerminateJob for every unfinished job.

    TerminateJob on an array parent terminates its children. The jobs are listed once more after
    the first pass, to catch a SubmitJob that was in flight when the execution stopped.
    """
    description, _ = unfinished_jobs(stack, run)
    result = CancelResult(description["name"], description["status"], stopped=False)
    with aws_errors():
        if description["status"] == "RUNNING":
            stack.client("stepfunctions").stop_execution(
                executionArn=description["executionArn"], error="agesweep.Cancelled", cause=reason
            )
            result.stopped = True
        done: set[str] = set()
        for _ in range(2):
            _, rows = unfinished_jobs(stack, run)
            for row in rows:
                if row.job_id in done:
                    continue
                stack.client("batch").terminate_job(jobId=row.job_id, reason=reason[:1024])
                done.add(str(row.job_id))
                result.terminated.append({"age": row.age, "job_id": row.job_id, "status": row.status})
    return result


# ------------------------------------------------------------------------------------ logs
@dataclass
class LogLine:
    attempt: int
    stream: str
    timestamp: float
    message: str


def age_job(stack: Stack, run: str, age: int, index: int | None = None) -> dict[str, Any]:
    """The described Batch job of one age (an array child with `index`)."""
    description = describe_run(stack, run)
    with aws_errors():
        plan = tracking.plan_from_history(tracking.history_events(stack.client("stepfunctions"), description["executionArn"]))
        if plan is None:
            raise OpsError(f"run {description['name']} has no plan (yet): {description['status']} {description.get('error') or ''}".rstrip())
        ages = sorted({int(item["age"]) for item in plan["items"]})
        if age not in ages:
            raise OpsError(f"run {description['name']} has no age {age} (ages {ages[0]}..{ages[-1]}: {', '.join(map(str, ages))})")
        rows = [r for r in tracking.age_progress(plan, tracking.list_run_jobs(stack.client("batch"), plan)) if r.age == age]
        submitted = [r for r in rows if r.job_id]
        if not submitted:
            raise OpsError(f"age {age} of run {description['name']} has not been submitted yet")
        if len(submitted) > 1 and index is None:
            raise OpsError(f"age {age} has {len(submitted)} jobs (one per slice): pass --index 0..{len(submitted) - 1}")
        row = submitted[index if len(submitted) > 1 and index is not None else 0]
        job_id = str(row.job_id)
        if row.array_size:
            if index is None:
                raise OpsError(f"age {age} is an array job of {row.array_size} slices: pass --index 0..{row.array_size - 1}")
            if not 0 <= index < row.array_size:
                raise OpsError(f"--index {index}: age {age} has array indexes 0..{row.array_size - 1}")
            job_id = f"{job_id}:{index}"
        jobs = stack.client("batch").describe_jobs(jobs=[job_id])["jobs"]
    if not jobs:
        raise OpsError(f"job {job_id} of age {age} is no longer known to Batch (jobs are kept about 7 days)")
    return dict(jobs[0])


def job_streams(job: dict[str, Any]) -> list[tuple[int, str]]:
    """(attempt number, log stream) in attempt order; the current attempt's stream last."""
    streams: list[tuple[int, str]] = []
    for number, attempt in enumerate(job.get("attempts") or [], start=1):
        name = (attempt.get("container") or {}).get("logStreamName")
        if name and name not in [s for _, s in streams]:
            streams.append((number, name))
    current = (job.get("container") or {}).get("logStreamName")
    if current and current not in [s for _, s in streams]:
        streams.append((len(job.get("attempts") or []) + 1, current))
    return streams


def log_lines(
    stack: Stack,
    run: str,
    age: int,
    *,
    index: int | None = None,
    follow: bool = False,
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogLine]:
    """The job's log lines across its attempts; with `follow`, until the job has ended."""
    logs, batch = stack.client("logs"), stack.client("batch")
    job = age_job(stack, run, age, index)
    tokens: dict[str, str | None] = {}
    while True:
        finished = job["status"] in tracking.TERMINAL_STATUSES
        for attempt, stream in job_streams(job):
            while True:
                kwargs: dict[str, Any] = {"logGroupName": stack.log_group, "logStreamName": stream, "startFromHead": True}
                if tokens.get(stream):
                    kwargs["nextToken"] = tokens[stream]
                with aws_errors():
                    try:
                        page = logs.get_log_events(**kwargs)
                    except ClientError as exc:
                        if _code(exc) == "ResourceNotFoundException":
                            break  # the stream appears when the container writes its first line
                        raise
                for event in page.get("events", []):
                    yield LogLine(attempt, stream, event["timestamp"] / 1000.0, event["message"])
                token = page.get("nextForwardToken")
                if token == tokens.get(stream) or not page.get("events"):
                    tokens[stream] = token
                    break
                tokens[stream] = token
        if not follow or finished:
            return
        sleep(poll_s)
        with aws_errors():
            job = batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]
