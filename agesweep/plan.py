"""Planning: a valid Manifest → the plan dict the state machine runs (shape: docs/internals.md).

Pure functions; the only AWS input is an optional job definition description (from preflight)
used to build the RegisterJobDefinition request for an image override.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from agesweep.aws import pascal_case
from agesweep.axes import MAX_POINTS, number_label, path_label
from agesweep.axes import points as axes_points
from agesweep.contracts import (
    ContainerOverrides,
    CostEstimate,
    EnvironmentVariable,
    EvaluateOnExit,
    JobDefinitionRef,
    JobTimeout,
    ManifestRef,
    Plan,
    PlanItem,
    PlanTotals,
    ResourceRequirement,
    RetryStrategy,
    StackResources,
)
from agesweep.errors import ManifestInvalid
from agesweep.manifest import EFS_ROOT, MAX_ARRAY_SIZE, MAX_TAGS, MIN_ARRAY_SIZE, Manifest, SliceGrid, parse_manifest
from agesweep.manifest_checks import points_of
from agesweep.pricing import (
    DEFAULT_EPOCHS,
    DEFAULT_PRICES,
    DISEASES,
    SECONDS_PER_EPOCH_CELL,
    TIMES,
    expected_job_seconds,
    extra_memory_gib,
    money,
    step_functions_cost,
)
from agesweep.runs import EXECUTION_NAME_MAX, items_key
from agesweep.settings import OFFLINE_JOB_DEFINITION, OFFLINE_JOB_QUEUE, Settings, definition_family

if TYPE_CHECKING:
    from agesweep.preflight import Preflight

JOB_NAME_MAX = 128
CONTAINER_OVERRIDES_MAX = 8192
PAYLOAD_LIMIT = 256 * 1024  # Step Functions state payload limit
PAYLOAD_BUDGET = PAYLOAD_LIMIT // 2  # the plan shares the state with the Map's results
HISTORY_LIMIT = 25_000  # Step Functions execution history events
HISTORY_BUDGET = 20_000  # headroom for API throttling retries
INLINE_MAP_CONCURRENCY = 40  # an inline Map runs at most 40 iterations at once
MAX_ITEMS = MAX_POINTS  # Map iterations (Batch jobs or array jobs) per run
# Above this many items, or the history budget, the plan runs as a Distributed Map (items in S3).
INLINE_ITEMS_MAX = 1_000

# Counted from statemachine/sweep.asl.json (one happy path, no retries):
#   fixed: ValidateManifest, OverridesJobDefinition, InlineOrDistributed, RunAges, CollateResults,
#          NotifySummary, WithinTolerance, SweepSucceeded (+ RegisterJobDefinition for an own image)
#   per item: IsArrayJob, Submit(Array)Job, RecordSuccess
TRANSITIONS_FIXED = 8
TRANSITIONS_PER_ITEM = 3
#   history: execution start/end, 3 Lambda/SNS tasks x 5, choices x 3 x 2 (entered/exited), map start/end x 4,
#            succeed x 2
#   per item: MapIterationStarted/Succeeded, choice x 2, task entered/scheduled/started/submitted/
#   succeeded/exited, pass x 2
HISTORY_FIXED = 29
HISTORY_PER_ITEM = 12
HISTORY_REGISTER = 5
# A Distributed Map's iterations are child executions with their own histories; the parent's has
# the fixed states plus the map run's own events (MapRunStarted/Succeeded, state entered/exited).
HISTORY_FIXED_DISTRIBUTED = HISTORY_FIXED + 4

PRICES = DEFAULT_PRICES  # the dated defaults; Settings.prices (PRICES_JSON) is what a plan uses

# Spot interruptions (host terminated) are retried; application errors exit at once.
EVALUATE_ON_EXIT = [
    EvaluateOnExit(OnStatusReason="Host EC2*", Action="RETRY"),
    EvaluateOnExit(OnReason="*", Action="EXIT"),
]

_JOB_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_TAG_UNSAFE = re.compile(r"[^\w\s.:/=+@-]")
_REGISTER_MEMBERS = (
    "jobDefinitionName", "type", "parameters", "schedulingPriority", "containerProperties", "nodeProperties",
    "retryStrategy", "propagateTags", "timeout", "tags", "platformCapabilities", "eksProperties", "ecsProperties",
)


# ---------------------------------------------------------------- naming


def job_name(prefix: str, start: int, end: int, age: int) -> str:
    """`<prefix>-<start>-<end>-age-<AGE>` (the seed's form); a prefix already ending in
    `-<start>-<end>` is not repeated, so run `aladyn-0-10000` gives `aladyn-0-10000-age-55`."""
    span = f"-{start}-{end}"
    base = prefix if prefix.endswith(span) else prefix + span
    return safe_job_name(f"{base}-age-{age}")


def safe_job_name(name: str) -> str:
    """Batch job name rules: ≤128 of [A-Za-z0-9_-], starting alphanumeric. Longer names keep their
    tail (the age) and a 10-hex digest of the full name, so shortening is deterministic and unique."""
    clean = _JOB_NAME_UNSAFE.sub("-", name)
    if not clean[:1].isalnum():
        clean = "j" + clean
    if len(clean) <= JOB_NAME_MAX:
        return clean
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    tail = clean[clean.rfind("-age-"):] if "-age-" in clean else ""
    head = clean[: JOB_NAME_MAX - len(tail) - len(digest) - 1]
    return f"{head}-{digest}{tail}"


def array_layout(bounds: list[tuple[int, int]], grid: bool) -> int | None:
    """The slice size when the slices can run as one array job, else None."""
    if len(bounds) < MIN_ARRAY_SIZE or len(bounds) > MAX_ARRAY_SIZE:
        return None
    size = bounds[0][1] - bounds[0][0]
    if grid:
        return size
    for i in range(1, len(bounds)):
        if bounds[i][0] != bounds[i - 1][1]:
            return None
        if i < len(bounds) - 1 and bounds[i][1] - bounds[i][0] != size:
            return None
    return size if bounds[-1][1] - bounds[-1][0] <= size else None


# ---------------------------------------------------------------- points


@dataclass(frozen=True)
class ItemShared:
    """What every item of a run shares."""

    run_id: str
    run_name: str
    results_uri: str
    tags: dict[str, str]
    overrides: ContainerOverrides
    timeout: JobTimeout
    retry: RetryStrategy
    on_demand_retry: RetryStrategy

    def results_prefix(self, folder: str) -> str:
        """A point's own prefix for its small results (metrics JSON) under the run's."""
        return self.results_uri if not folder or self.results_uri == "none" else f"{self.results_uri}points/{folder}/"


class PointParts(NamedTuple):
    """What one point adds to its items: axis labels, folder, job-name part, tags, Ref:: parameters."""

    labels: dict[str, str]
    folder: str
    name_part: str
    tags: dict[str, str]
    parameters: dict[str, str]


def point_parts(manifest: Manifest) -> list[PointParts]:
    """Every point of the manifest's axes (one empty point without axes). Each value's folder segment
    (`name=value`), job-name part and tag are computed once per axis value, not once per point."""
    columns = manifest.axis_columns()
    if not columns:
        return [PointParts({}, "", "", {}, {})]
    names = [n for n, _ in columns]
    tag_keys = [f"agesweep:{n}" for n in names]
    cells = [
        [(v.label, f"{n}={path_label(v.label)}", path_label(v.label), _TAG_UNSAFE.sub("-", v.label)[:256], v.parameters)
         for v in values]
        for n, values in columns
    ]
    return [
        PointParts(
            labels=dict(zip(names, (c[0] for c in combo), strict=True)),
            folder="/".join(c[1] for c in combo),
            name_part="-".join(c[2] for c in combo),
            tags=dict(zip(tag_keys, (c[3] for c in combo), strict=True)),
            parameters={k: v for c in combo for k, v in c[4]},
        )
        for combo in axes_points(cells, manifest.combine)
    ]


def trainer_items(manifest: Manifest, shared: ItemShared, bounds: list[tuple[int, int]], size: int | None) -> list[PlanItem]:
    """The trainer's items: each point x age, its slices as one array job (or one job per irregular slice)."""
    layouts: list[tuple[int, int, int, int, list[tuple[int, int]] | None]]
    if size is not None:
        layouts = [(bounds[0][0], bounds[-1][1], size, len(bounds), None)]
    else:
        layouts = [(s, e, 0, 0, [(s, e)]) for s, e in bounds]
    training = manifest.training.as_parameters()
    resume = {"resume_from": manifest.resume_from} if manifest.resume_from else {}
    items: list[PlanItem] = []
    for point in point_parts(manifest):
        output = f"{manifest.output}/{point.folder}" if point.folder else manifest.output
        prefix = f"{shared.run_name}-{point.name_part}" if point.name_part else shared.run_name
        common = {"run_id": shared.run_id, "input": manifest.input, "output": output,
                  "results_uri": shared.results_prefix(point.folder), **training, **point.parameters, **resume}
        tags = {**shared.tags, **point.tags}
        for age in manifest.age_values():
            for start, end, slice_size, array_size, slices in layouts:
                slice_tag = f"{start}-{end}" if not slice_size else f"{start}-{end}/{slice_size}"
                items.append(PlanItem.model_construct(
                    age=age, point=point.labels, job_name=job_name(prefix, start, end, age), array_size=array_size,
                    start_index=start, end_index=end, slice_size=slice_size, slices=slices,
                    output_folder=f"{output}/{shared.run_id}/age_{age}/",
                    parameters={"start_index": str(start), "end_index": str(end), "slice_size": str(slice_size),
                                "age": str(age), **common},
                    container_overrides=shared.overrides, timeout=shared.timeout, retry_strategy=shared.retry,
                    on_demand_retry_strategy=shared.on_demand_retry,
                    tags={**tags, "agesweep:age": str(age), "agesweep:slice": slice_tag},
                ))
    return items


def workload_items(manifest: Manifest, shared: ItemShared) -> list[PlanItem]:
    """Your own job's items: one Batch job per point, its axis values its Ref:: parameters and tags."""
    fixed = {"run_id": shared.run_id, "input": manifest.input, "output": manifest.output, **manifest.job.parameters}
    items: list[PlanItem] = []
    for point in point_parts(manifest):
        output_folder = f"{manifest.output}/{shared.run_id}/{point.folder}/"
        items.append(PlanItem.model_construct(
            point=point.labels, job_name=safe_job_name(f"{shared.run_name}-{point.name_part}"),
            array_size=0, start_index=0, end_index=0, slice_size=0, slices=None, age=None,
            output_folder=output_folder,
            parameters={**fixed, **point.parameters, "output_folder": output_folder,
                        "results_uri": shared.results_prefix(point.folder)},
            container_overrides=shared.overrides, timeout=shared.timeout, retry_strategy=shared.retry,
            on_demand_retry_strategy=shared.on_demand_retry, tags={**shared.tags, **point.tags},
        ))
    return items


def name_problems(items: list[PlanItem], *, folders: bool) -> list[str]:
    """Job names (and an own job's output folders) must be unique: two points whose values differ only
    in characters a job name cannot hold would share them. The trainer's slices of one age share its folder."""
    problems = []
    keys: list[tuple[str, Callable[[PlanItem], str]]] = [("job name", lambda i: i.job_name)]
    if folders:
        keys.append(("output folder", lambda i: i.output_folder))
    for what, key in keys:
        seen: dict[str, PlanItem] = {}
        for item in items:
            other = seen.setdefault(key(item), item)
            if other is not item:
                problems.append(
                    f"axes: points ({other.label()}) and ({item.label()}) get one {what} {key(item)!r} "
                    f"(values that differ in more than characters outside A-Z a-z 0-9 . _ = + @ -)"
                )
                break
    return problems


# ---------------------------------------------------------------- the plan


def _resource_overrides(manifest: Manifest) -> ContainerOverrides:
    job, reqs = manifest.job, []
    if job.vcpus is not None:
        reqs.append(ResourceRequirement(Type="VCPU", Value=str(job.vcpus)))
    if job.memory_mib is not None:
        reqs.append(ResourceRequirement(Type="MEMORY", Value=str(job.memory_mib)))
    if job.gpus:
        reqs.append(ResourceRequirement(Type="GPU", Value=str(job.gpus)))
    # inside a container torch sees the host's cores; size its thread pool to the job's vCPUs
    threads = [EnvironmentVariable(Name="OMP_NUM_THREADS", Value=str(job.vcpus))] if job.vcpus is not None else None
    return ContainerOverrides(ResourceRequirements=reqs or None, Environment=threads)


def run_definition_family(definition_ref: str) -> str:
    """The family a run's own revisions take their name from (`<stack>-train` for the stack's):
    they are registered as `<family>-<run_name>`, the names the state machine's role may register."""
    return "agesweep-job" if definition_ref == OFFLINE_JOB_DEFINITION else definition_family(definition_ref)


def job_definition_request(
    manifest: Manifest,
    definition_ref: str,
    run_name: str,
    run_id: str,
    sha256: str,
    timeout: JobTimeout,
    retry: RetryStrategy,
    description: dict[str, Any] | None,
) -> dict[str, Any]:
    """RegisterJobDefinition request for an image override: the base definition with the new image,
    under its own name (`<base>-<run_name>`) so the stack's definition family never changes."""
    base_name = run_definition_family(definition_ref)
    if description:
        source = {k: description[k] for k in _REGISTER_MEMBERS if k in description}
        request: dict[str, Any] = pascal_case(source)
    else:
        request = {"Type": "container", "ContainerProperties": {}, "Parameters": {}}
    request["JobDefinitionName"] = safe_job_name(f"{base_name}-{run_name}")
    request.setdefault("Type", "container")
    request["ContainerProperties"] = {**request.get("ContainerProperties", {}), "Image": manifest.job.image}
    request.setdefault("Parameters", {})
    request["RetryStrategy"] = retry.model_dump(mode="json")
    request["Timeout"] = timeout.model_dump(mode="json")
    request["Tags"] = {**request.get("Tags", {}), "agesweep:run_id": run_id, "agesweep:manifest_sha256": sha256}
    request["PropagateTags"] = True
    return request


def _uses_efs(manifest: Manifest) -> bool:
    """The job reads or writes the stack's EFS: its output, its input (when the manifest names one) or
    a parameter, under /data."""
    named_input = [manifest.input] if "input" in manifest.model_fields_set else []
    values = [*named_input, manifest.output, *manifest.job.parameters.values()]
    return any(v == EFS_ROOT or v.startswith(EFS_ROOT + "/") for v in values)


def container_definition_request(
    manifest: Manifest, stack: Settings, run_name: str, run_id: str, sha256: str, timeout: JobTimeout, retry: RetryStrategy,
    stack_description: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """RegisterJobDefinition request for an inline container spec (`<stack family>-<run_name>`): its image,
    command, resources, environment and secrets (valueFrom), run as the stack's job role, with the
    stack's EFS mounted at /data when the job names a path there, logging where the stack's own
    definition logs (`stack_description`, camelCase as Batch describes it; offline: Batch's default)."""
    spec = manifest.job.container
    assert spec is not None
    resources = [{"Type": "VCPU", "Value": number_label(spec.vcpus)}, {"Type": "MEMORY", "Value": str(spec.memory_mib)}]
    if spec.gpus:
        resources.append({"Type": "GPU", "Value": str(spec.gpus)})
    container: dict[str, Any] = {
        "Image": spec.image,
        "Command": list(spec.command),
        "ResourceRequirements": resources,
        "Environment": [{"Name": k, "Value": v} for k, v in spec.environment.items()],
        "Secrets": [{"Name": k, "ValueFrom": v} for k, v in spec.secrets.items()],
    }
    if stack.job_role_arn:
        container["JobRoleArn"] = stack.job_role_arn
    if stack.job_execution_role_arn:
        container["ExecutionRoleArn"] = stack.job_execution_role_arn
    log_configuration = ((stack_description or {}).get("containerProperties") or {}).get("logConfiguration")
    if log_configuration:  # the stack's job log group: failure alerts and the report read the log tail there
        container["LogConfiguration"] = pascal_case(log_configuration)
    if _uses_efs(manifest) and stack.efs_file_system_id:
        container["Volumes"] = [{"Name": "data", "EfsVolumeConfiguration": {
            "FileSystemId": stack.efs_file_system_id, "TransitEncryption": "ENABLED",
            **({"AuthorizationConfig": {"AccessPointId": stack.efs_access_point_id, "Iam": "ENABLED"}}
               if stack.efs_access_point_id else {}),
        }}]
        container["MountPoints"] = [{"SourceVolume": "data", "ContainerPath": EFS_ROOT, "ReadOnly": False}]
    return {
        "JobDefinitionName": safe_job_name(f"{run_definition_family(stack.job_definition or OFFLINE_JOB_DEFINITION)}-{run_name}"),
        "Type": "container",
        "ContainerProperties": container,
        "Parameters": {},
        "RetryStrategy": retry.model_dump(mode="json"),
        "Timeout": timeout.model_dump(mode="json"),
        "Tags": {"agesweep:run_id": run_id, "agesweep:manifest_sha256": sha256 or "unknown"},
        "PropagateTags": True,
    }


def _child_patients(item: PlanItem) -> dict[int, int]:
    """Patients per child job of an item -> how many of its child jobs train that many."""
    if not item.slice_size:
        return dict(Counter(end - start for start, end in item.slice_spans()))
    full, rest = divmod(item.end_index - item.start_index, item.slice_size)
    return {item.slice_size: full, **({rest: 1} if rest else {})}


def _expected_hours(items: list[PlanItem], default_epochs: int, vcpus: float, timeout_s: float) -> float:
    """Sum over the trainer's child jobs of their expected time (each item's own epochs: an axis may vary them)."""
    seconds = 0.0
    for item in items:
        epochs = int(item.parameters.get("epochs", default_epochs))
        seconds += sum(n * expected_job_seconds(p, epochs, vcpus, timeout_s) for p, n in _child_patients(item).items())
    return seconds / 3600


def _cost_estimate(manifest: Manifest, settings: Settings, items: list[PlanItem], transitions: int) -> CostEstimate:
    """The bound (every child job runs once for its full timeout) and the expected cost (each runs
    its expected time, agesweep.pricing.expected_job_seconds), at the settings' prices."""
    prices, job, spec = settings.prices, manifest.job, manifest.job.container
    minutes = (spec.timeout_minutes if spec else job.timeout_minutes) or settings.default_timeout_minutes
    timeout_s = 60.0 * minutes
    vcpus = float(spec.vcpus if spec else job.vcpus or settings.default_vcpus)
    extra_gib = extra_memory_gib(vcpus, (spec.memory_mib if spec else job.memory_mib) or settings.default_memory_mib, prices)
    gpus = float((spec.gpus if spec else job.gpus) or 0)
    epochs = manifest.training.epochs or DEFAULT_EPOCHS
    children = sum(i.array_size or 1 for i in items)
    timeout_hours = children * timeout_s / 3600
    trainer = manifest.workload == "trainer"
    expected_hours = _expected_hours(items, epochs, vcpus, timeout_s) if trainer else 0.0

    def compute(hours: float, spot: bool) -> float:
        if spot:
            return hours * (vcpus * prices.vcpu_hour_spot + extra_gib * prices.extra_gib_hour_spot + gpus * prices.gpu_hour_spot)
        return hours * (vcpus * prices.vcpu_hour_on_demand + extra_gib * prices.extra_gib_hour_on_demand
                        + gpus * prices.gpu_hour_on_demand)

    return CostEstimate(
        step_functions=round(step_functions_cost(transitions, prices), 4),
        compute_spot_at_timeout=round(compute(timeout_hours, spot=True), 2),
        compute_on_demand_at_timeout=round(compute(timeout_hours, spot=False), 2),
        vcpu_hours_at_timeout=round(timeout_hours * vcpus, 2),
        gpu_hours_at_timeout=round(timeout_hours * gpus, 2),
        prices=prices,
        compute_spot_expected=money(compute(expected_hours, spot=True)) if trainer else None,
        compute_on_demand_expected=money(compute(expected_hours, spot=False)) if trainer else None,
        vcpu_hours_expected=round(expected_hours * vcpus, 3) if trainer else None,
        gpu_hours_expected=round(expected_hours * gpus, 3) if trainer else None,
        job_hours_expected=round(expected_hours, 3) if trainer else None,
    )


def _totals(manifest: Manifest, settings: Settings, items: list[PlanItem], slices: int, register: bool) -> PlanTotals:
    """Counts, the history budget, the cost bound and the expected cost."""
    children = sum(i.array_size or 1 for i in items)
    transitions = TRANSITIONS_FIXED + TRANSITIONS_PER_ITEM * len(items) + (1 if register else 0)
    history = HISTORY_FIXED + HISTORY_PER_ITEM * len(items) + (HISTORY_REGISTER if register else 0)
    spec = manifest.job.container
    hours = ((spec.timeout_minutes if spec else manifest.job.timeout_minutes) or settings.default_timeout_minutes) / 60
    prices = settings.prices
    epochs = manifest.training.epochs or DEFAULT_EPOCHS
    per_epoch_10k = SECONDS_PER_EPOCH_CELL * 10_000 * DISEASES * TIMES
    return PlanTotals(
        ages=len({i.age for i in items if i.age is not None}),
        points=len(items) if manifest.workload != "trainer" else len({(tuple(i.point.items()), i.age) for i in items}),
        jobs=len(items),
        array_jobs=sum(1 for i in items if i.array_size >= MIN_ARRAY_SIZE),
        child_jobs=children,
        slices=slices,
        state_transitions=transitions,
        history_events=history,
        history_limit=HISTORY_LIMIT,
        cost_estimate_usd=_cost_estimate(manifest, settings, items, transitions),
        estimate_note=(
            f"Estimate, not a quote: 'up to' assumes every job runs once for its full timeout ({hours:g} h); no "
            f"'expected' figure, since agesweep knows only the trainer's speed; {prices.region} list prices as of "
            f"{prices.as_of}; transitions and history events assume no retries."
        ) if manifest.workload != "trainer" else (
            f"Estimate, not a quote: 'expected' assumes each child job trains {epochs} epochs at the trainer "
            f"benchmark's speed ({per_epoch_10k:.2f} s/epoch per 10,000 patients x {DISEASES} diseases x {TIMES} "
            f"times on 2 vCPUs); 'up to' assumes every child job runs once for its full timeout ({hours:g} h); "
            f"{prices.region} list prices as of {prices.as_of}; transitions and history events assume no retries."
        ),
    )


def _warnings(manifest: Manifest, settings: Settings, definition_ref: str, *, described: bool) -> list[str]:
    """What may surprise the person who submits the run, though nothing is wrong."""
    warnings: list[str] = []
    if manifest.max_concurrency > INLINE_MAP_CONCURRENCY:
        warnings.append(
            f"max_concurrency: {manifest.max_concurrency} is above {INLINE_MAP_CONCURRENCY}, "
            f"the most iterations an inline Map runs at once"
        )
    if manifest.job.image is not None and not described:
        warnings.append(
            f"job.image: the job definition request was built without describing {definition_ref} "
            f"(offline); the validate Lambda derives it from the live definition"
        )
    if settings.s3_unrestricted and (manifest.input.startswith("s3://") or manifest.output.startswith("s3://")):
        warnings.append("input/output: no stack bucket configured, so s3:// buckets were not checked against an allow-list")
    return warnings


def plan(
    manifest: Manifest,
    stack: Settings,
    run_id: str,
    *,
    source_name: str = "manifest.yaml",
    manifest_sha256: str = "",
    manifest_location: dict[str, Any] | None = None,
    job_definition_description: dict[str, Any] | None = None,
) -> Plan:
    """Expand a manifest into one item per age (per age and slice when the slices are irregular).

    Raises ManifestInvalid when the run breaks a Step Functions or Batch limit.
    """
    problems: list[str] = []
    if len(run_id) > EXECUTION_NAME_MAX or not re.fullmatch(r"[A-Za-z0-9_-]+", run_id):
        problems.append(f"run_id: {run_id!r} is not a usable execution name (≤{EXECUTION_NAME_MAX} of A-Z a-z 0-9 _ -)")
    run_name = manifest.effective_run_name(source_name)
    ages = manifest.age_values()
    bounds = manifest.slice_bounds()
    grid = isinstance(manifest.slices, SliceGrid)
    size = array_layout(bounds, grid)
    n_points = points_of(manifest)
    n_items = n_points * (len(ages) * (1 if size or len(bounds) == 1 else len(bounds)) if manifest.workload == "trainer" else 1)
    register = manifest.job.image is not None or manifest.job.container is not None
    if n_items > MAX_ITEMS:
        what = (f"{len(ages)} ages x {len(bounds)} irregular slices" if manifest.workload == "trainer" and not size and len(bounds) > 1
                else f"{n_points:,} points" + (f" x {len(ages)} ages" if ages else ""))
        problems.append(
            f"{'slices' if 'irregular' in what else 'axes'}: {what} = {n_items:,} jobs (at most {MAX_ITEMS:,} per run: "
            f"equal-width contiguous slices run each age as one array job; or split the sweep into several manifests)"
        )
        raise ManifestInvalid(problems)
    history = HISTORY_FIXED + HISTORY_PER_ITEM * n_items + (HISTORY_REGISTER if register else 0)
    distributed = n_items > INLINE_ITEMS_MAX or history > HISTORY_BUDGET

    sha = manifest_sha256
    own_timeout = manifest.job.container.timeout_minutes if manifest.job.container else None
    timeout = JobTimeout(
        AttemptDurationSeconds=60 * (own_timeout or manifest.job.timeout_minutes or stack.default_timeout_minutes)
    )
    retry = RetryStrategy(Attempts=manifest.job.attempts or stack.default_attempts, EvaluateOnExit=EVALUATE_ON_EXIT)
    # On the spot-first queue Batch retries a lost host in place; the N-th reclaim ends the job and
    # the state machine escalates the item to the on-demand queue (with `retry` there).
    spot_retry = RetryStrategy(Attempts=manifest.job.spot_reclaims_before_on_demand, EvaluateOnExit=EVALUATE_ON_EXIT)
    overrides = _resource_overrides(manifest)
    overrides_chars = len(overrides.model_dump_json())
    if overrides_chars > CONTAINER_OVERRIDES_MAX:
        problems.append(f"job: container overrides are {overrides_chars} characters (at most {CONTAINER_OVERRIDES_MAX})")
    results_uri = stack.results_uri(run_id)
    base_tags = {"agesweep:run_id": run_id, "agesweep:manifest_sha256": sha or "unknown", **manifest.tags}
    shared = ItemShared(run_id, run_name, results_uri, base_tags, overrides, timeout, spot_retry, retry)
    items = trainer_items(manifest, shared, bounds, size) if manifest.workload == "trainer" else workload_items(manifest, shared)
    problems += name_problems(items, folders=manifest.workload != "trainer")
    if items and max(len(i.tags) for i in items) > MAX_TAGS:
        problems.append(f"tags: {max(len(i.tags) for i in items)} tags per job (at most {MAX_TAGS}, including agesweep's own)")

    definition_ref = manifest.job.definition or stack.job_definition or OFFLINE_JOB_DEFINITION
    if manifest.job.container is not None:
        definition_ref = OFFLINE_JOB_DEFINITION if stack.job_definition is None else stack.job_definition
        request: dict[str, Any] | None = container_definition_request(
            manifest, stack, run_name, run_id, sha, timeout, retry, job_definition_description
        )
    elif register:
        request = job_definition_request(manifest, definition_ref, run_name, run_id, sha, timeout, retry, job_definition_description)
    else:
        request = None
    location = ManifestRef.model_validate({"key": source_name, **(manifest_location or {}), "sha256": sha})
    result = Plan(
        run_id=run_id,
        run_name=run_name,
        manifest=location,
        job_queue=manifest.job.queue or stack.job_queue or OFFLINE_JOB_QUEUE,
        job_definition=JobDefinitionRef(ref=definition_ref),
        register_job_definition=register,
        job_definition_request=request,
        max_concurrency=manifest.max_concurrency,
        tolerated_failure_percent=manifest.tolerated_failure_percent,
        results_uri=results_uri,
        input=manifest.input,
        output=manifest.output,
        workload=manifest.workload,
        axes=list(manifest.axes),
        items=items,
        totals=_totals(manifest, stack, items, len(bounds), register),
        warnings=_warnings(manifest, stack, definition_ref, described=job_definition_description is not None),
        stack_resources=StackResources(vcpus=stack.default_vcpus, memory_mib=stack.default_memory_mib),
    )
    payload = 0 if distributed else result.payload_bytes()
    if distributed or payload > PAYLOAD_BUDGET:
        result = as_distributed(result)
        payload = result.payload_bytes()
    result.totals.payload_bytes = payload
    if payload > PAYLOAD_BUDGET:  # only the shared members are left in the state: a run-wide limit
        problems.append(
            f"job: the plan's shared part is {payload // 1024} KiB (at most {PAYLOAD_BUDGET // 1024} KiB, "
            f"half the {PAYLOAD_LIMIT // 1024} KiB Step Functions payload limit)"
        )
    if problems:
        raise ManifestInvalid(problems)
    return result


def as_distributed(result: Plan) -> Plan:
    """The plan for a Distributed Map: its items go to the stack bucket (items_key, written by the
    validate Lambda) and the Map reads them from there, so neither the state payload nor the
    parent execution's history grows with the number of items."""
    history = HISTORY_FIXED_DISTRIBUTED + (HISTORY_REGISTER if result.register_job_definition else 0)
    totals = result.totals.model_copy(update={"history_events": history})
    return result.model_copy(update={
        "map_mode": "DISTRIBUTED", "items_key": items_key(result.run_id), "totals": totals,
    })


def validate_and_plan(
    raw: bytes,
    source_name: str,
    stack: Settings,
    run_id: str,
    manifest_location: dict[str, Any] | None = None,
    preflight: Preflight | None = None,
) -> Plan:
    """The whole validate step: bytes → plan. The one function the validate Lambda calls.

    Raises ManifestInvalid (schema, limits), then PreflightFailed / InputMissing (AWS checks).
    """
    manifest = parse_manifest(raw, source_name, stack)
    sha = hashlib.sha256(raw).hexdigest()
    kwargs: dict[str, Any] = {
        "source_name": source_name,
        "manifest_sha256": sha,
        "manifest_location": manifest_location,
    }
    result = plan(manifest, stack, run_id, **kwargs)
    if preflight is not None:
        description = preflight.check(manifest, result.job_queue, result.job_definition.ref)
        if result.register_job_definition:
            result = plan(manifest, stack, run_id, job_definition_description=description, **kwargs)
    return result
