"""Every shape that crosses a boundary, as one pydantic model each (docs/internals.md shows them).

start_run ──ExecutionInput──▶ ValidateManifest ──Plan──▶ Map ──ItemResult──▶ CollateResults
──CollateOutput──▶ Notify. The collated run (summary.json) is ``Summary``; the trainer's metrics
file as collation reads it is ``JobMetrics``.

Members that Step Functions forwards verbatim to the Batch API (container overrides, timeout,
retry strategy) keep Batch's PascalCase names and drop unset members when dumped, since Batch
rejects explicit nulls. The JSON Schema of these models is what docs/internals.md is checked
against, so a shape cannot change without its documentation.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SUMMARY_SCHEMA_VERSION = 1
PLAN_SCHEMA_VERSION = 1


class Contract(BaseModel):
    """A boundary shape: unknown members are an error, so a drifted producer fails loudly."""

    model_config = ConfigDict(extra="forbid")


class BatchMember(Contract):
    """A fragment of a Batch request (PascalCase): unset members (``Unset()``) are left out of the JSON."""


def _is_none(value: object) -> bool:
    return value is None


def Unset() -> Any:  # noqa: N802 - reads as a field default, like pydantic's Field
    """An optional Batch member: None, and left out of the JSON when None (Batch rejects explicit nulls)."""
    return Field(None, exclude_if=_is_none)


# ------------------------------------------------------------------ start_run → the execution


class ManifestRef(Contract):
    """The manifest object version a run was started for, and its content digest."""

    bucket: str | None = None
    key: str
    version_id: str | None = None
    sha256: str = ""
    source: str | None = Field(
        None, description="Where the manifest was saved before S3 (its `source` metadata), e.g. efs:/data/manifests/x.yaml."
    )


class ExecutionInput(Contract):
    """The sweep execution's input (start_run) and the ValidateManifest state's payload.

    ``run_id`` is the execution name: a digest of (bucket, key, version_id) — agesweep.runs.
    """

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    version_id: str | None = None
    run_id: str = Field(min_length=1, max_length=80)


class StartRunResult(Contract):
    """What start_run answers for one S3 event (logged; nothing reads it but tests and people)."""

    started: bool
    run_id: str | None = None
    execution_arn: str | None = None
    reason: str | None = Field(
        None, description="folder marker, duplicate (this version has its run), identical (the key's latest run's bytes), rerun requested."
    )
    identical_to: str | None = Field(None, description="The key's latest run, when this version holds its bytes.")


class SkippedUpload(Contract):
    """skipped/<run_id>.json in the stack bucket: a manifest version that started nothing because its
    bytes are the key's latest run's (`agesweep runs` lists these)."""

    run_id: str
    bucket: str
    key: str
    version_id: str | None = None
    sha256: str
    identical_to: str
    at: str = Field(description="When start_run decided (ISO 8601, UTC).")


# ------------------------------------------------------------------ the plan


class ResourceRequirement(BatchMember):
    Type: Literal["VCPU", "MEMORY", "GPU"]
    Value: str


class EnvironmentVariable(BatchMember):
    Name: str
    Value: str


class ContainerOverrides(BatchMember):
    """Per-job resources (never secrets): SubmitJob's ContainerOverrides."""

    ResourceRequirements: list[ResourceRequirement] | None = Unset()
    Environment: list[EnvironmentVariable] | None = Unset()


class JobTimeout(BatchMember):
    AttemptDurationSeconds: int = Field(ge=60)


class EvaluateOnExit(BatchMember):
    OnStatusReason: str | None = Unset()
    OnReason: str | None = Unset()
    OnExitCode: str | None = Unset()
    Action: Literal["RETRY", "EXIT"]


class RetryStrategy(BatchMember):
    Attempts: int = Field(ge=1, le=10)
    EvaluateOnExit: list[EvaluateOnExit]


class PlanItem(Contract):
    """One Map iteration, one point of the sweep: one Batch job (array_size 0) or one array job (array_size ≥ 2)."""

    age: int | None = Field(None, description="The trainer's age; null for your own workload.")
    point: dict[str, str] = Field(
        default_factory=dict, description="The point's value of each named axis (labels; ages are `age`)."
    )
    job_name: str
    array_size: int = Field(0, description="0: a single job; ≥ 2: an array job, child i trains slice i.")
    start_index: int = 0
    end_index: int = 0
    slice_size: int = Field(
        0, description="0 for a single job; array child i trains start_index + i*slice_size .. min(+slice_size, end_index)."
    )
    slices: list[tuple[int, int]] | None = Field(
        None, description="A single job's [[start, end]]; null for an array job (see slice_spans)."
    )
    output_folder: str
    parameters: dict[str, str] = Field(description="Batch Parameters: the Ref:: values of the job command.")
    container_overrides: ContainerOverrides
    timeout: JobTimeout
    retry_strategy: RetryStrategy = Field(
        description="The spot-first submission's: Attempts = the manifest's spot reclaims before on-demand."
    )
    on_demand_retry_strategy: RetryStrategy | None = Field(
        None, description="The one resubmission to the on-demand queue after that many host reclaims."
    )
    tags: dict[str, str]

    def label(self) -> str:
        """The point in words: `age 60`, `learning_rate 0.01, seed 1, age 60`, `scene S2A_…`."""
        parts = [f"{k} {v}" for k, v in self.point.items()]
        return ", ".join([*parts, *([f"age {self.age}"] if self.age is not None else [])]) or self.job_name

    def slice_spans(self) -> list[tuple[int, int]]:
        """The (start, end) slices this item trains; array child i is entry i."""
        if not self.slice_size:
            return list(self.slices or [(self.start_index, self.end_index)])
        return [
            (s, min(s + self.slice_size, self.end_index))
            for s in range(self.start_index, self.end_index, self.slice_size)
        ]


class JobDefinitionRef(Contract):
    """An object, so the RegisterJobDefinition state can replace it with the new revision's ARN."""

    ref: str


class Prices(Contract):
    """The dated public list prices an estimate was made with (agesweep.pricing; PRICES_JSON overrides)."""

    as_of: str
    region: str
    step_functions_per_1000_transitions: float
    vcpu_hour_on_demand: float
    vcpu_hour_spot: float
    gpu_hour_on_demand: float
    gpu_hour_spot: float
    gib_per_vcpu_included: float = Field(4.0, description="Memory per vCPU the vCPU-hour price includes (m6i: 4 GiB).")
    extra_gib_hour_on_demand: float = Field(0.00375, description="Memory beyond the included GiB per vCPU, per GiB-hour.")
    extra_gib_hour_spot: float = 0.0013


class CostEstimate(Contract):
    """The planner's figures, in USD: the bound (every child job running to its timeout) and the
    expected cost (each job running its expected time, agesweep.pricing.expected_job_seconds)."""

    step_functions: float
    compute_spot_at_timeout: float
    compute_on_demand_at_timeout: float
    vcpu_hours_at_timeout: float
    gpu_hours_at_timeout: float
    prices: Prices
    compute_spot_expected: float | None = None
    compute_on_demand_expected: float | None = None
    vcpu_hours_expected: float | None = None
    gpu_hours_expected: float | None = None
    job_hours_expected: float | None = Field(None, description="Sum over child jobs of the expected run time, in hours.")


class StackResources(Contract):
    """The stack job definition's resources as the planner knew them (Settings), for jobs without overrides."""

    vcpus: float
    memory_mib: int
    gpus: int = 0


class PlanTotals(Contract):
    ages: int
    points: int = Field(0, description="Points of the sweep (axis values x ages); one or more jobs each.")
    jobs: int
    array_jobs: int
    child_jobs: int
    slices: int
    state_transitions: int
    history_events: int
    history_limit: int
    cost_estimate_usd: CostEstimate
    estimate_note: str
    payload_bytes: int | None = Field(None, description="The plan's JSON size; filled in once the plan is built.")


class Plan(Contract):
    """Everything the state machine needs to run one manifest, plus totals for people."""

    schema_version: int = PLAN_SCHEMA_VERSION
    run_id: str
    run_name: str
    manifest: ManifestRef
    job_queue: str
    job_definition: JobDefinitionRef
    register_job_definition: bool
    job_definition_request: dict[str, Any] | None = Field(
        description="RegisterJobDefinition request (PascalCase, as the aws-sdk:batch integration takes it), "
        "only when the manifest overrides the image."
    )
    max_concurrency: int
    tolerated_failure_percent: float
    results_uri: str
    input: str
    output: str
    workload: Literal["trainer", "container", "definition"] = Field(
        "trainer", description="trainer: the stack's Aladyn job; container: an inline job definition; definition: an existing one."
    )
    axes: list[str] = Field(default_factory=list, description="The named axes, in manifest order (ages not included).")
    map_mode: Literal["INLINE", "DISTRIBUTED"] = Field(
        "INLINE", description="INLINE: items travel in the state; DISTRIBUTED: items_key holds them (a Distributed Map)."
    )
    items_key: str | None = Field(None, description="Stack-bucket key of the items JSON (DISTRIBUTED).")
    items: list[PlanItem]
    totals: PlanTotals
    warnings: list[str] = Field(default_factory=list)
    stack_resources: StackResources | None = Field(
        None, description="The job definition's resources (the stack defaults) for items without overrides."
    )

    def to_state(self) -> dict[str, Any]:
        """The plan as the state machine carries it (JSON types, Batch members without nulls); a
        DISTRIBUTED plan's items are left out (the Map reads them from items_key)."""
        if self.map_mode == "DISTRIBUTED":
            return {**self.model_dump(mode="json", exclude={"items"}), "items": []}
        return self.model_dump(mode="json")

    def items_json(self) -> bytes:
        """The items as the Distributed Map's ItemReader reads them: one JSON array."""
        return _ITEMS.dump_json(self.items)

    def with_items_json(self, data: bytes) -> Plan:
        """This plan with the items of an items_json() document (a DISTRIBUTED plan's, read back)."""
        return self.model_copy(update={"items": _ITEMS.validate_json(data)})

    def payload_bytes(self) -> int:
        return len(json.dumps(self.to_state(), separators=(",", ":")))


_ITEMS: TypeAdapter[list[PlanItem]] = TypeAdapter(list[PlanItem])

# ------------------------------------------------------------------ one Map iteration


class SubmittedJob(Contract):
    """The ResultSelector of the SubmitJob states: the job and its final status."""

    JobId: str
    Status: str


class CaughtError(Contract):
    """A Catch's ``$.error``: Cause is the failed job's JSON description, or an API error text."""

    Error: str
    Cause: str | None = None


Capacity = Literal["spot", "on-demand"]


class Escalation(Contract):
    """ClassifyFailure's verdict on a failed spot-first submission: escalate to on-demand or not."""

    escalate: bool
    reason: str = Field(description="The failure in one line (the job's, or its failed children's commonest).")
    reclaims: int = Field(0, description="Attempts (of the job and its children) that lost their host.")
    job_id: str | None = Field(None, description="The spot-first job that failed.")
    children: int = 0
    failed_children: int = 0
    reasons: list[str] = Field(default_factory=list, description="The first few distinct failure reasons.")


class ClassifyInput(Contract):
    """The ClassifyFailure state's payload: the item's array size and the spot-first job's caught error."""

    array_size: int = 0
    error: CaughtError


class ItemResult(Contract):
    """What one Map iteration records (RecordSuccess / RecordFailure / RecordOnDemand* in the ASL)."""

    age: int | None = None
    job_name: str
    array_size: int
    status: Literal["SUCCEEDED", "FAILED"]
    capacity: Capacity = Field("spot", description="The queue of the job recorded here: spot-first, or on-demand after escalation.")
    job: SubmittedJob | None = None
    error: CaughtError | None = None
    escalation: Escalation | None = Field(None, description="Why the spot-first job failed, when it did.")

    def cause_job(self) -> dict[str, Any] | None:
        """The failed job's description (camelCase) when the caught error carries one."""
        from agesweep.aws import camel_case  # deferred: contracts stay import-light

        if self.error is None or not self.error.Cause:
            return None
        try:
            cause = json.loads(self.error.Cause)
        except ValueError:
            return None
        if isinstance(cause, dict) and ("JobId" in cause or "jobId" in cause):
            described: dict[str, Any] = camel_case(cause)
            return described
        return None

    @property
    def job_id(self) -> str | None:
        """The Batch job this iteration ran, from its result or from the failure's job description."""
        if self.job is not None:
            return self.job.JobId
        cause = self.cause_job()
        return str(cause["jobId"]) if cause and cause.get("jobId") else None


# ------------------------------------------------------------------ collation


class ResultWriterDetails(Contract):
    Bucket: str
    Key: str = Field(description="The map run's manifest.json (its ResultFiles list the SUCCEEDED_n / FAILED_n files).")


class MapRunResults(Contract):
    """A Distributed Map's output: where its ResultWriter put the iterations' results."""

    MapRunArn: str
    ResultWriterDetails: ResultWriterDetails


class CollateInput(Contract):
    """What the CollateResults state sends: the iterations' results (an inline Map; null where an
    iteration left none), or where a Distributed Map wrote them (the plan's items then in items_key)."""

    plan: Plan
    results: list[ItemResult | None] | MapRunResults


class CollateOutput(Contract):
    """What CollateResults returns: the counts the Choice reads and the SNS text Notify sends."""

    run_id: str
    total: int
    succeeded: int
    failed: int
    within_tolerance: bool
    subject: str = Field(max_length=100)
    message: str
    summary_uri: str
    report_uri: str
    retry_manifest_uri: str


class Lineage(BaseModel):
    """The trainer's lineage block (metrics JSON); other workloads may add members."""

    model_config = ConfigDict(extra="allow")

    run_id: str | None = None
    job_id: str | None = None
    attempt: int | None = None
    array_index: int | None = None
    image: str | None = None
    job_definition: str | None = None
    input: str | None = None
    parameters: dict[str, Any] | None = None
    torch: str | None = None
    git_revision: str | None = None


class Divergence(BaseModel):
    """The trainer's own verdict on its loss curve."""

    model_config = ConfigDict(extra="allow")

    suspect: bool = False
    reasons: list[str] = Field(default_factory=list)


class Recovery(BaseModel):
    """How well a synthetic run recovered its generating parameters (only where they are known)."""

    model_config = ConfigDict(extra="allow")

    theta_pearson: float | None = Field(None, description="Pearson r of fitted and true theta over times up to the age.")
    times: int | None = Field(None, description="How many times (0..age-30) the correlation covers.")


class JobMetrics(BaseModel):
    """The metrics JSON a job wrote (the trainer's fields; a job may write more, kept as they are)."""

    model_config = ConfigDict(extra="allow")

    run_id: str | None = None
    age: int | None = None
    start_index: int | None = None
    end_index: int | None = None
    n_patients: int | None = None
    epochs: int | None = None
    final_loss: float | None = None
    loss_history: list[tuple[int, float | None]] | None = Field(None, description="[[epoch, loss], ...]; null: not finite.")
    heldout_c_index: float | None = None
    wall_time_s: float | None = None
    peak_rss_mb: int | float | None = None  # int as the trainer writes it, so summary.json keeps 900, not 900.0
    device: str | None = None
    resumed_from_epoch: int | None = None
    resumed_from_run: str | None = Field(None, description="The retried run whose checkpoint this job resumed (--resume_from).")
    reused_from_run: str | None = Field(None, description="The retried run whose finished outputs this job reused, untrained.")
    cpu_seconds: float | None = Field(None, description="User + system CPU seconds of the trainer process.")
    heldout_c_index_initial: float | None = Field(None, description="Held-out c-index of the untrained model.")
    loss_per_cell: float | None = None
    divergence: Divergence | None = None
    recovery: Recovery | None = None
    lineage: Lineage | None = None


class SliceOutcome(BaseModel):
    """One (age, slice): one Batch job, or one child of the age's array job (one per point of your own job)."""

    age: int | None = None
    point: dict[str, str] = Field(default_factory=dict)
    start_index: int
    end_index: int
    status: str = Field(description="Batch status (SUCCEEDED, FAILED, ...) or MISSING / NOT_SUBMITTED.")
    status_reason: str | None = None
    exit_code: int | None = None
    attempts: int = 0
    duration_s: float | None = None
    started_at: str | None = None
    stopped_at: str | None = None
    job_id: str | None = None
    array_index: int | None = None
    log_stream: str | None = None
    log_url: str | None = None
    capacity: str | None = Field(
        None, description="spot or on-demand: the queue that ran the final attempt (else what its compute environment says)."
    )
    reclaims: int = Field(0, description="Attempts of this slice lost to a host reclaim (spot and on-demand).")
    log_tail: list[str] = Field(default_factory=list, description="The last lines of a failed job's log.")
    metrics: JobMetrics | None = Field(None, description="The job's metrics JSON, without its lineage.")
    metrics_lineage: Lineage | None = None
    suspect: bool = Field(False, description="The training looks wrong (trainer's divergence verdict or collation's checks).")
    suspect_reasons: list[str] = Field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def slice_label(self) -> str:
        return f"{self.start_index}-{self.end_index}"


class AgeOutcome(BaseModel):
    """One plan item (one point: an age, or axis values; its slices as one array job or a single job)."""

    age: int | None = None
    point: dict[str, str] = Field(default_factory=dict)
    job_name: str
    job_id: str | None = None
    array_size: int = 0
    status: str
    status_reason: str | None = None
    error: CaughtError | None = Field(None, description="The Map iteration's caught error, if any.")
    capacity: str = Field("spot", description="spot, or on-demand when the item escalated.")
    reclaims: int = Field(0, description="Host reclaims the item suffered, over all its jobs and children.")
    escalated_from: str | None = Field(None, description="The spot-first job id of an escalated item.")
    parameters: dict[str, str] = Field(default_factory=dict)
    slices: list[SliceOutcome]


class Failure(BaseModel):
    age: int | None = None
    point: dict[str, str] = Field(default_factory=dict)
    start_index: int
    end_index: int
    status: str
    reason: str
    exit_code: int | None = None
    attempts: int = 0
    log_url: str | None = None
    capacity: str | None = None
    reclaims: int = 0
    log_tail: list[str] = Field(default_factory=list, description="The last lines of the job's log, in its own words.")


class RunLineage(BaseModel):
    """Where a run came from: manifest version + sha256, image, job definition, input, parameters."""

    run_id: str
    manifest: ManifestRef
    image: str | list[str] | None = None
    job_definition: str | list[str] | None = None
    job_queue: str | None = None
    input: str | None = None
    output: str | None = None
    results_uri: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    git_revision: str | list[str] | None = None
    retry_of: str | None = Field(None, description="The run this one retries (the manifest's resume_from).")


class IncurredCost(BaseModel):
    """What the run cost (USD): Batch job seconds x the capacity each ran on, plus state transitions."""

    total: float
    compute: float
    step_functions: float
    job_hours: float
    vcpu_hours: float
    gpu_hours: float
    extra_memory_gib_hours: float = 0.0
    jobs_by_capacity: dict[str, int] = Field(default_factory=dict, description="spot / on-demand -> jobs.")
    unmeasured_jobs: int = Field(0, description="Jobs Batch gave no start/stop times for (not counted).")
    state_transitions: int
    prices: Prices
    note: str


class SummaryCost(BaseModel):
    cost_estimate_usd: CostEstimate | None = None
    estimate_note: str | None = None
    incurred: IncurredCost | None = None
    if_run_on_aws: bool = Field(False, description="Local mode: every figure is what the run would cost on AWS.")


class ResourceUse(BaseModel):
    """Requested against used, for one age (``age`` set) or the whole run."""

    age: int | None = None
    jobs: int
    measured_jobs: int = Field(description="Jobs with a metrics JSON (peak memory, CPU seconds).")
    vcpus_requested: float | None = None
    memory_mib_requested: int | None = None
    gpus_requested: int = 0
    peak_memory_mib: float | None = Field(None, description="Largest peak RSS of any job.")
    cpu_seconds: float | None = Field(None, description="Summed; measured where the trainer wrote cpu_seconds.")
    cpu_seconds_measured: bool = Field(False, description="False: requested vCPUs x wall time (an upper bound).")
    wall_s: float | None = Field(None, description="Summed job wall time (trainer's, else Batch started..stopped).")
    busy_vcpus: float | None = Field(None, description="CPU seconds / wall seconds: vCPUs kept busy on average.")


class ResourceRecommendation(BaseModel):
    """The next run's per-job resources (agesweep.collation.resources.recommend explains the rule)."""

    vcpus: int
    memory_mib: int
    reason: str


class RunResources(BaseModel):
    overall: ResourceUse
    ages: list[ResourceUse] = Field(default_factory=list)
    recommendation: ResourceRecommendation | None = None


class Summary(BaseModel):
    """Everything a person (or the report, or a script) needs to know about one run: summary.json."""

    schema_version: int = SUMMARY_SCHEMA_VERSION
    run_id: str
    run_name: str
    lineage: RunLineage
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    total: int
    succeeded: int
    failed: int
    failed_percent: float
    tolerated_failure_percent: float
    within_tolerance: bool
    failed_ages: list[int]
    suspect_ages: list[int] = Field(default_factory=list)
    axes: list[str] = Field(default_factory=list, description="The run's named axes (ages not included).")
    failed_points: list[dict[str, str]] = Field(
        default_factory=list, description="Each failed item's point (axis values, and `age` for the trainer)."
    )
    cost_estimate: SummaryCost = Field(default_factory=SummaryCost)
    resources: RunResources | None = None
    ages: list[AgeOutcome]
    failures: list[Failure]
    collated_at: str
    notes: list[str] = Field(default_factory=list)

    def slices(self) -> list[SliceOutcome]:
        return [s for a in self.ages for s in a.slices]


BOUNDARY_MODELS: tuple[type[BaseModel], ...] = (
    ExecutionInput, Plan, PlanItem, ClassifyInput, Escalation, ItemResult, CollateInput, MapRunResults, CollateOutput, Summary,
)
