"""Why a job waits in RUNNABLE: the queue's compute environments, instance sizes and EC2 vCPU quotas."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agesweep.contracts import PlanItem
from agesweep.operations.deployment import DeployedStack
from agesweep.operations.errors import aws_errors

DEFAULT_STUCK_AFTER_S = 600.0
# Service Quotas codes of the EC2 vCPU limits that most often hold Batch jobs in RUNNABLE.
EC2_VCPU_QUOTAS = {
    "L-34B43A08": "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
    "L-1216C47A": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
}
SPOT_CAPACITY = frozenset({"SPOT", "FARGATE_SPOT"})


@dataclass
class StuckJob:
    """A job waiting in RUNNABLE longer than the threshold, and why it may be waiting."""

    age: int | None
    job_id: str | None
    waiting_s: float
    vcpus: float | None
    memory_mib: int | None
    causes: list[str]
    label: str = ""  # the point in words (`age 60`, `variable t2m, window ...`)


@dataclass
class ComputeEnvironment:
    """One compute environment of the job queue: state, status and capacity."""

    name: str
    arn: str = ""
    type: str | None = None
    state: str | None = None
    status: str | None = None
    status_reason: str | None = None
    capacity: str | None = None  # EC2, SPOT, FARGATE, FARGATE_SPOT
    allocation_strategy: str | None = None
    min_vcpus: int | None = None
    desired_vcpus: int | None = None
    max_vcpus: int | None = None
    instance_types: list[str] = field(default_factory=list)

    @property
    def managed(self) -> bool:
        return self.type == "MANAGED"

    @classmethod
    def of(cls, arn: str, described: dict[str, Any]) -> ComputeEnvironment:
        resources = described.get("computeResources") or {}
        return cls(
            name=described.get("computeEnvironmentName", arn.rsplit("/", 1)[-1]),
            arn=arn,
            type=described.get("type"),
            state=described.get("state"),
            status=described.get("status"),
            status_reason=described.get("statusReason"),
            capacity=resources.get("type"),
            allocation_strategy=resources.get("allocationStrategy"),
            min_vcpus=resources.get("minvCpus"),
            desired_vcpus=resources.get("desiredvCpus"),
            max_vcpus=resources.get("maxvCpus"),
            instance_types=list(resources.get("instanceTypes") or []),
        )


def requested_resources(item: PlanItem | None, job: dict[str, Any]) -> tuple[float | None, int | None]:
    """vCPUs and MiB a job asks for: the plan's override, else what Batch reports for the job."""
    container = job.get("container") or {}
    requirements = [(r.Type, r.Value) for r in (item.container_overrides.ResourceRequirements or [] if item else [])]
    requirements += [(r.get("type"), r.get("value")) for r in container.get("resourceRequirements") or []]
    vcpus = next((float(value) for kind, value in requirements if kind == "VCPU"), None)
    memory = next((int(value) for kind, value in requirements if kind == "MEMORY"), None)
    return vcpus or container.get("vcpus"), memory or container.get("memory")


def runnable_since(job: dict[str, Any]) -> float | None:
    """When the job (or its retry) last became runnable: creation, or the last attempt's stop."""
    times = [job.get("createdAt")] + [attempt.get("stoppedAt") for attempt in job.get("attempts") or []]
    known = [t for t in times if t]
    return max(known) / 1000.0 if known else None


def compute_environments(stack: DeployedStack, job_queue: str) -> list[ComputeEnvironment]:
    """The queue's compute environments in order, with state, status and capacity."""
    batch = stack.client("batch")
    with aws_errors():
        queues = batch.describe_job_queues(jobQueues=[job_queue])["jobQueues"]
        if not queues:
            return []
        order = sorted(queues[0].get("computeEnvironmentOrder") or [], key=lambda o: o.get("order", 0))
        arns = [o["computeEnvironment"] for o in order]
        described = {
            ce["computeEnvironmentArn"]: ce
            for ce in batch.describe_compute_environments(computeEnvironments=arns)["computeEnvironments"]
        } if arns else {}
    return [ComputeEnvironment.of(arn, described.get(arn, {"computeEnvironmentArn": arn})) for arn in arns]


def instance_type_limits(stack: DeployedStack, types: list[str]) -> dict[str, tuple[int, int]]:
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


def ec2_vcpu_quotas(stack: DeployedStack) -> dict[str, float]:
    """The account's EC2 vCPU quotas (spot / on-demand standard) where Service Quotas answers."""
    quotas: dict[str, float] = {}
    for code in EC2_VCPU_QUOTAS:
        with contextlib.suppress(BotoCoreError, ClientError, KeyError):
            answer = stack.client("service-quotas").get_service_quota(ServiceCode="ec2", QuotaCode=code)
            quotas[code] = float(answer["Quota"]["Value"])
    return quotas


def _state_causes(ce: ComputeEnvironment) -> list[str]:
    causes = []
    if ce.state != "ENABLED":
        causes.append(f"compute environment {ce.name} is {ce.state}: enable it (UpdateComputeEnvironment state=ENABLED)")
    if ce.status == "INVALID":
        causes.append(f"compute environment {ce.name} is INVALID: {ce.status_reason or 'see its status reason'}")
    if ce.type == "UNMANAGED":
        causes.append(
            f"compute environment {ce.name} is UNMANAGED: jobs start only when its own instances (or local mode's workers) are free"
        )
    return causes


def _capacity_causes(
    ce: ComputeEnvironment, vcpus: float | None, memory_mib: int | None, instance_limits: dict[str, tuple[int, int]]
) -> list[str]:
    causes = []
    name, max_vcpus = ce.name, ce.max_vcpus
    if ce.managed and vcpus and max_vcpus is not None and max_vcpus < vcpus:
        causes.append(
            f"the job asks {vcpus:g} vCPUs but {name} allows at most maxvCpus {max_vcpus}: "
            "it can never start there (raise MaxvCpus or lower the manifest's vcpus)"
        )
    elif ce.managed and max_vcpus and ce.desired_vcpus is not None and ce.desired_vcpus >= max_vcpus:
        causes.append(f"{name} is at maxvCpus ({max_vcpus}): jobs wait for running ones to finish")
    sizes = [instance_limits[t] for t in ce.instance_types if t in instance_limits]
    if sizes and vcpus and max(v for v, _ in sizes) < vcpus:
        causes.append(f"no instance type of {name} ({', '.join(ce.instance_types)}) has {vcpus:g} vCPUs")
    if sizes and memory_mib and max(m for _, m in sizes) < memory_mib:
        causes.append(f"no instance type of {name} has {memory_mib} MiB (leave ~5% for the ECS agent)")
    if ce.capacity in SPOT_CAPACITY:
        types = ", ".join(ce.instance_types or ["its instance types"])
        causes.append(f"{name} is SPOT: spot capacity for {types} may be short; more instance types help")
    return causes


def _quota_causes(vcpus: float | None, quotas: dict[str, float], managed: bool) -> list[str]:
    causes = []
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


def stuck_causes(
    vcpus: float | None,
    memory_mib: int | None,
    environments: list[ComputeEnvironment],
    instance_limits: dict[str, tuple[int, int]],
    quotas: dict[str, float],
) -> list[str]:
    """Likely reasons a job stays RUNNABLE, most specific first (pure: tested without AWS)."""
    causes: list[str] = []
    if not environments:
        causes.append("the job queue has no compute environment")
    for ce in environments:
        causes += _state_causes(ce) + _capacity_causes(ce, vcpus, memory_mib, instance_limits)
    return causes + _quota_causes(vcpus, quotas, any(ce.managed for ce in environments))
