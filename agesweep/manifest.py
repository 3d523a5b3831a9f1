"""The run manifest: the one pydantic model every entry point validates against (CLI, Lambdas,
local mode), plus a safe loader that turns any bad file into `ManifestInvalid` — never a traceback.

Every problem is reported at once, one per line, as `field.path: what is wrong (what is allowed)`.
Stack-dependent limits (allowed ages, allowed buckets) come from the validation context
`{"stack": Settings}`; without one the stack defaults apply.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from agesweep import axes as sweep_axes
from agesweep.axes import AXIS_MODELS, Axis, Combine
from agesweep.errors import ManifestInvalid
from agesweep.manifest_errors import FieldTree, format_errors, paths_problem
from agesweep.manifest_loading import MAX_MANIFEST_BYTES, load_data
from agesweep.settings import Settings
from agesweep.workload import ContainerSpec, ParameterName, ParameterValue, PinnedImage

SCHEMA_VERSION = 1
MAX_ARRAY_SIZE = 10_000  # AWS Batch array job limit
MIN_ARRAY_SIZE = 2
MAX_TAGS = 50  # AWS Batch tags per resource
RESERVED_TAGS = 4  # agesweep:run_id, agesweep:age, agesweep:slice, agesweep:manifest_sha256
MAX_USER_TAGS = MAX_TAGS - RESERVED_TAGS
MAX_USER_TAG_CHARS = 1024  # keys + values; tags are copied into every plan item (payload limit)
RUN_NAME_MAX = 64
RUN_ID_MAX = 80  # a Step Functions execution name (agesweep.runs.EXECUTION_NAME_MAX)
MAX_INDEX = 1_000_000_000  # patient indices; keeps job names short
EFS_ROOT = "/data"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_RUN_ID_RE = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{RUN_ID_MAX - 1}}}$")
_JOB_DEF_RE = re.compile(
    r"^(?:arn:aws[a-z-]*:batch:[a-z0-9-]+:\d{12}:job-definition/)?[A-Za-z0-9][A-Za-z0-9_-]{0,127}(?::\d+)?$"
)
_QUEUE_RE = re.compile(r"^(?:arn:aws[a-z-]*:batch:[a-z0-9-]+:\d{12}:job-queue/)?[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SAFE_PATH_RE = re.compile(r"^[A-Za-z0-9._/=+@-]*$")
_TAG_CHARS_RE = re.compile(r"^[\w\s.:/=+@-]*$")



def _problem(text: str) -> PydanticCustomError:
    """A validation error whose message is already `what is wrong (what is allowed)`."""
    return PydanticCustomError("agesweep", text.replace("{", "{{").replace("}", "}}"))


def _stack(info: ValidationInfo) -> Settings:
    ctx = info.context or {}
    stack = ctx.get("stack") if isinstance(ctx, dict) else None
    return stack if isinstance(stack, Settings) else Settings()


class _Strict(BaseModel):
    """Strict types (no "40" → 40, no true → 1) and unknown fields rejected."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------- ages


class AgeRange(_Strict):
    """Every age from `from` to `to`, both included."""

    from_: int = Field(alias="from", description="First age (included).")
    to: int = Field(description="Last age (included).")
    step: int = Field(1, ge=1, le=100, description="Distance between ages (default 1).")

    @model_validator(mode="after")
    def _ordered(self) -> AgeRange:
        if self.from_ > self.to:
            raise _problem(f"from {self.from_} is above to {self.to} (from ≤ to)")
        return self

    def values(self) -> list[int]:
        return list(range(self.from_, self.to + 1, self.step))


def _ages_kind(value: Any) -> str | None:
    if isinstance(value, dict | AgeRange):
        return "age_range"
    if isinstance(value, list):
        return "age_list"
    return None


AgeList = Annotated[list[int], Field(min_length=1, max_length=151)]
Ages = Annotated[
    Annotated[AgeRange, Tag("age_range")] | Annotated[AgeList, Tag("age_list")],
    Discriminator(
        _ages_kind,
        custom_error_type="ages_shape",
        custom_error_message="not a range or a list (a range {from: 40, to: 79} or a list of ages [40, 55])",
    ),
]

# ---------------------------------------------------------------- slices


class Slice(_Strict):
    """Patients `start_index` (included) to `end_index` (excluded)."""

    start_index: int = Field(ge=0, le=MAX_INDEX, description="First patient index (included).")
    end_index: int = Field(ge=1, le=MAX_INDEX, description="Last patient index (excluded).")

    @model_validator(mode="after")
    def _ordered(self) -> Slice:
        if self.start_index >= self.end_index:
            raise _problem(
                f"start_index {self.start_index} is not below end_index {self.end_index} (start_index < end_index)"
            )
        return self


class SliceGrid(_Strict):
    """`total` patients from `start_index`, cut into slices of `size` (the last may be shorter)."""

    size: int = Field(ge=1, le=MAX_INDEX, description="Patients per slice.")
    total: int = Field(ge=1, le=MAX_INDEX, description="Patients in all (slices cover start_index .. start_index + total).")
    start_index: int = Field(0, ge=0, le=MAX_INDEX, description="First patient index (default 0).")

    @model_validator(mode="after")
    def _array_limit(self) -> SliceGrid:
        count = math.ceil(self.total / self.size)
        if count > MAX_ARRAY_SIZE:
            raise _problem(
                f"{count:,} slices of {self.size} is too many (at most {MAX_ARRAY_SIZE:,} per age: the Batch array size limit)"
            )
        return self

    @property
    def end_index(self) -> int:
        return self.start_index + self.total

    def slices(self) -> list[tuple[int, int]]:
        end = self.end_index
        return [(s, min(s + self.size, end)) for s in range(self.start_index, end, self.size)]


def slice_order_problem(spans: list[tuple[int, int, int]]) -> str | None:
    """Overlapping or unsorted slices, from (list index, start, end) triples; None when in order."""
    bad: list[str] = []
    for (_, p_start, p_end), (i, start, end) in zip(spans, spans[1:], strict=False):
        if start < p_end:
            what = "overlaps" if start >= p_start else "comes before"
            bad.append(f"[{i}] {start}..{end} {what} [{i - 1}] {p_start}..{p_end}")
    if not bad:
        return None
    more = f"; {len(bad) - 3} more" if len(bad) > 3 else ""
    return f"{'; '.join(bad[:3])}{more} (slices sorted by start_index, each starting at or after the previous end_index)"


def _check_slice_list(slices: list[Slice]) -> list[Slice]:
    problem = slice_order_problem([(i, s.start_index, s.end_index) for i, s in enumerate(slices)])
    if problem:
        raise _problem(problem)
    return slices


def _slices_kind(value: Any) -> str | None:
    if isinstance(value, list):
        return "slice_list"
    if isinstance(value, dict | SliceGrid):
        return "slice_grid"
    return None


SliceList = Annotated[list[Slice], Field(min_length=1, max_length=MAX_ARRAY_SIZE), AfterValidator(_check_slice_list)]
Slices = Annotated[
    Annotated[SliceList, Tag("slice_list")] | Annotated[SliceGrid, Tag("slice_grid")],
    Discriminator(
        _slices_kind,
        custom_error_type="slices_shape",
        custom_error_message=(
            "not a list or a grid (a list of {start_index, end_index}, or {size, total, start_index})"
        ),
    ),
]

# ---------------------------------------------------------------- locations


def _check_location(value: str, info: ValidationInfo) -> str:
    """EFS paths confined under /data; s3:// URIs confined to the stack's allowed buckets."""
    if value.startswith("s3://"):
        bucket, _, key = value[5:].partition("/")
        if not _BUCKET_RE.match(bucket) or ".." in bucket:
            raise _problem(f"bucket {bucket!r} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)")
        stack = _stack(info)
        if not stack.bucket_allowed(bucket):
            allowed = ", ".join(sorted(stack.buckets)) or "none configured"
            raise _problem(f"bucket {bucket!r} is not allowed (allowed buckets: {allowed})")
        parts = [p for p in key.split("/") if p]
        if any(p in (".", "..") for p in parts) or not _SAFE_PATH_RE.match(key):
            raise _problem(f"{value!r} has '..', '.' or unusual characters (a plain key prefix: A-Z a-z 0-9 . _ - / = + @)")
        return f"s3://{bucket}/{'/'.join(parts)}" if parts else f"s3://{bucket}"
    if value.startswith("/"):
        parts = value.split("/")
        if any(p in (".", "..") for p in parts) or not _SAFE_PATH_RE.match(value):
            raise _problem(f"{value!r} has '..', '.' or unusual characters (an absolute path under {EFS_ROOT}: A-Z a-z 0-9 . _ - / = + @)")
        norm = posixpath.normpath(value)
        if norm != EFS_ROOT and not norm.startswith(EFS_ROOT + "/"):
            raise _problem(f"{value!r} is outside {EFS_ROOT} (an EFS path under {EFS_ROOT}, or an s3:// URI)")
        return norm
    raise _problem(f"{value!r} is neither an EFS path nor an S3 URI (an absolute path under {EFS_ROOT}, or s3://bucket/prefix)")


Location = Annotated[str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_check_location)]

# ---------------------------------------------------------------- job overrides


def _check_definition(value: str) -> str:
    if not _JOB_DEF_RE.match(value):
        raise _problem(f"{value!r} is not a job definition (a name, name:revision or job-definition ARN)")
    return value


def _check_queue(value: str) -> str:
    if not _QUEUE_RE.match(value):
        raise _problem(f"{value!r} is not a job queue (a name of ≤128 A-Z a-z 0-9 _ -, or a job-queue ARN)")
    return value


class JobOverrides(_Strict):
    """What this run changes about the stack's Batch job; everything is optional."""

    definition: Annotated[str, AfterValidator(_check_definition)] | None = Field(
        None, description="Job definition name, name:revision or ARN (default: the stack's)."
    )
    queue: Annotated[str, AfterValidator(_check_queue)] | None = Field(
        None, description="Job queue name or ARN (default: the stack's)."
    )
    image: PinnedImage | None = Field(
        None, description="Container image with a tag or digest; registers a job definition revision for this run."
    )
    vcpus: int | None = Field(None, ge=1, le=256, description="vCPUs per job (container override).")
    memory_mib: int | None = Field(None, ge=256, le=2_097_152, description="Memory per job in MiB (container override).")
    gpus: int | None = Field(None, ge=0, le=16, description="GPUs per job (container override; 0 = none).")
    timeout_minutes: int | None = Field(
        None, ge=1, le=20_160, description="Per-attempt timeout in minutes (Batch minimum 60 s; at most 14 days)."
    )
    attempts: int | None = Field(
        None, ge=1, le=10,
        description="Batch attempts of the on-demand resubmission (1 = no retry); only host failures are retried.",
    )
    spot_reclaims_before_on_demand: int = Field(
        2, ge=1, le=10,
        description="Host reclaims a job may suffer on the spot-first queue (Batch retries it in place each time) "
        "before the state machine resubmits it, once, to the on-demand queue, resuming from its checkpoint.",
    )
    container: ContainerSpec | None = Field(
        None, description="Your own job: image, command with Ref:: placeholders, resources, environment, secrets; "
        "the state machine registers it as a job definition revision for this run."
    )
    parameters: dict[ParameterName, ParameterValue] = Field(
        default_factory=dict, max_length=100,
        description="Ref:: values every job of the run gets (an axis supplies the ones that vary).",
    )


# ---------------------------------------------------------------- training parameters


class TrainingParams(_Strict):
    """Passed to the trainer as `Ref::` parameters; unset ones keep the job definition's defaults."""

    epochs: int | None = Field(None, ge=1, le=100_000, description="Training epochs (job default 200).")
    learning_rate: float | None = Field(None, gt=0, le=10, description="Learning rate (job default 0.1).")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Random seed (job default 42).")
    keep_checkpoints: bool = Field(
        False, description="Keep each job's checkpoint after it succeeded (default false: the success marker keeps it skippable)."
    )

    def as_parameters(self) -> dict[str, str]:
        values = self.model_dump(exclude_none=True, exclude={"keep_checkpoints"})
        keep = {"keep_checkpoint": "true"} if self.keep_checkpoints else {}
        return {**{k: (repr(v) if isinstance(v, float) else str(v)) for k, v in values.items()}, **keep}


# ---------------------------------------------------------------- tags


def _check_tag_key(key: str) -> str:
    if key.lower().startswith("aws:"):
        raise _problem(f"key {key!r} starts with 'aws:' (that prefix is reserved by AWS)")
    if key.lower().startswith("agesweep:"):
        raise _problem(f"key {key!r} starts with 'agesweep:' (that prefix is reserved for the tags agesweep adds)")
    if not _TAG_CHARS_RE.match(key):
        raise _problem(f"key {key!r} has characters tags cannot hold (letters, digits, spaces and _ . : / = + - @)")
    return key


def _tag_value_to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _check_tag_value(value: str) -> str:
    if not _TAG_CHARS_RE.match(value):
        raise _problem(f"value {value!r} has characters tags cannot hold (letters, digits, spaces and _ . : / = + - @)")
    return value


TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_check_tag_key)]
TagValue = Annotated[
    str, BeforeValidator(_tag_value_to_str), StringConstraints(max_length=256), AfterValidator(_check_tag_value)
]

# ---------------------------------------------------------------- the manifest

Workload = Literal["trainer", "container", "definition"]


def _check_axis_name(name: str) -> str:
    if not sweep_axes.AXIS_NAME_RE.match(name):
        raise _problem(f"{name!r} is not an axis name (≤40 of a-z 0-9 _, starting with a letter)")
    return name


AxisName = Annotated[str, AfterValidator(_check_axis_name)]


def _check_resume_from(value: str) -> str:
    if not _RUN_ID_RE.match(value):
        raise _problem(
            f"{value!r} is not a run id (the run this one retries, as `agesweep runs` lists it: ≤{RUN_ID_MAX} of A-Z a-z 0-9 _ -)"
        )
    return value


def _check_run_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise _problem(f"{value!r} is not a valid run name (A-Z a-z 0-9 _ -, starting with a letter or digit)")
    return value


class Manifest(_Strict):
    """One run: which ages, which patient slices, where data lives, and how the Batch job runs."""

    model_config = ConfigDict(title="agesweep run manifest", json_schema_extra={
        "$id": "agesweep-manifest-v1",
        # the trainer needs ages and slices; your own job needs axes and job (container or definition)
        "anyOf": [{"required": ["ages", "slices"]}, {"required": ["axes", "job"]}],
    })

    schema_version: Literal[1] = Field(1, description="Manifest schema version; only 1 exists.")
    run_name: Annotated[str, StringConstraints(min_length=1, max_length=RUN_NAME_MAX), AfterValidator(_check_run_name)] | None = Field(
        None, description="Run name and job name prefix (default: the file name without extension)."
    )
    ages: Ages | None = Field(
        None, description="Ages to train: {from, to[, step]} (inclusive) or a list (the stack's trainer only; required there)."
    )
    slices: Slices | None = Field(
        None,
        description="Patient slices: a list of {start_index, end_index} or {size, total[, start_index]} "
        "(the trainer only; required there).",
    )
    axes: Annotated[dict[AxisName, Axis], Field(max_length=sweep_axes.MAX_AXES)] = Field(
        default_factory=dict,
        description="Named sweep axes, each a list, a range {from, to[, step]} or date windows {start, end[, days]}; "
        "one job per point, its values the job's Ref:: parameters and tags.",
    )
    combine: Combine = Field("product", description="product: every combination of the axes (default); zip: by position.")
    input: Location = Field(EFS_ROOT + "/input", description="Input folder: EFS path under /data, or s3://bucket/prefix.")
    output: Location = Field(EFS_ROOT + "/output", description="Output folder: EFS path under /data, or s3://bucket/prefix.")
    job: JobOverrides = Field(default_factory=JobOverrides, description="Batch job overrides.")
    max_concurrency: int = Field(40, ge=1, le=1000, description="Ages running at once (Map MaxConcurrency).")
    tolerated_failure_percent: float = Field(
        0.0, ge=0, le=100, description="Percent of ages that may fail with the run still counted a success."
    )
    training: TrainingParams = Field(default_factory=TrainingParams, description="Trainer parameters (epochs, learning_rate, seed).")
    resume_from: Annotated[str, AfterValidator(_check_resume_from)] | None = Field(
        None,
        description=(
            "Run id this run retries: each (age, slice) that run finished is reused, not retrained; "
            "one it left a checkpoint for resumes from it (retry-manifest.yaml sets it)."
        ),
    )
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=MAX_USER_TAGS)] = Field(
        default_factory=dict, description=f"Tags added to every job (at most {MAX_USER_TAGS}; agesweep adds {RESERVED_TAGS})."
    )

    @field_validator("ages")
    @classmethod
    def _ages_allowed(cls, ages: AgeRange | list[int] | None, info: ValidationInfo) -> AgeRange | list[int] | None:
        if ages is None:
            return None
        stack = _stack(info)
        values = ages.values() if isinstance(ages, AgeRange) else ages
        problems: list[str] = []
        outside = sorted({a for a in values if not stack.age_min <= a <= stack.age_max})
        if outside:
            shown = ", ".join(map(str, outside[:5])) + (", …" if len(outside) > 5 else "")
            problems.append(f"{shown} outside the allowed ages ({stack.age_min}..{stack.age_max})")
        if isinstance(ages, list):
            counts = Counter(ages)
            dupes = sorted(a for a, n in counts.items() if n > 1)
            if dupes:
                problems.append(f"{', '.join(map(str, dupes))} listed twice (each age once)")
        if problems:
            raise _problem("; ".join(problems))
        return ages

    @field_validator("tags")
    @classmethod
    def _tags_fit_the_plan(cls, tags: dict[str, str]) -> dict[str, str]:
        chars = sum(len(k) + len(v) for k, v in tags.items())
        if chars > MAX_USER_TAG_CHARS:
            raise _problem(
                f"{chars:,} characters of keys and values is too many (at most {MAX_USER_TAG_CHARS:,} in all: "
                f"tags are copied into every job of the plan)"
            )
        return tags

    @model_validator(mode="after")
    def _output_not_input(self) -> Manifest:
        if self.output == self.input:
            raise _problem(f"output is the input folder {self.input!r} (a different folder)")
        return self

    @model_validator(mode="after")
    def _workload_consistent(self, info: ValidationInfo) -> Manifest:
        from agesweep.manifest_checks import workload_problems  # deferred: the checks read this model

        problems = workload_problems(self, _stack(info))
        if problems:
            raise paths_problem(problems)
        return self

    # -- derived views used by planning

    @property
    def workload(self) -> Workload:
        """trainer: the stack's Aladyn job over ages x slices; container: an inline job definition;
        definition: an existing job definition named by the manifest (without ages)."""
        if self.job.container is not None:
            return "container"
        if self.job.definition is not None and self.ages is None:
            return "definition"
        return "trainer"

    def age_values(self) -> list[int]:
        if self.ages is None:
            return []
        return self.ages.values() if isinstance(self.ages, AgeRange) else sorted(self.ages)

    def slice_bounds(self) -> list[tuple[int, int]]:
        if self.slices is None:
            return []
        if isinstance(self.slices, SliceGrid):
            return self.slices.slices()
        return [(s.start_index, s.end_index) for s in self.slices]

    def axis_columns(self) -> list[tuple[str, list[sweep_axes.AxisValue]]]:
        """Each named axis with its values, in manifest order."""
        return [(name, sweep_axes.axis_values(name, axis)) for name, axis in self.axes.items()]

    def effective_run_name(self, source_name: str) -> str:
        return self.run_name or run_name_from_source(source_name)


def run_name_from_source(source_name: str) -> str:
    """Default run name: the file name without its extension, made safe for job names."""
    stem = posixpath.basename(source_name.replace("\\", "/")).rsplit(".", 1)[0]
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:RUN_NAME_MAX]
    return safe or "run"


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema of the manifest, for editors (yaml-language-server, VS Code)."""
    schema = Manifest.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def parse_manifest(raw: bytes, source_name: str = "manifest.yaml", stack: Settings | None = None) -> Manifest:
    """Bytes → Manifest, or ManifestInvalid carrying every problem found."""
    data = load_data(raw, source_name)
    return validate_data(data, stack)


# The discriminator tags of ages/slices (they appear in error locations) and the model of each.
SLICE_MODELS: dict[str, type[BaseModel] | None] = {
    "age_range": AgeRange, "age_list": None, "slice_list": Slice, "slice_grid": SliceGrid, **AXIS_MODELS,
}


def validate_data(data: dict[str, Any], stack: Settings | None = None) -> Manifest:
    try:
        return Manifest.model_validate(data, context={"stack": stack or Settings()})
    except ValidationError as exc:
        problems = format_errors(exc, FieldTree(Manifest, SLICE_MODELS)) + _missing_for_trainer(data)
        problems += [p for p in _cross_field_problems(data, exc, stack) if p not in problems]
        hidden = _hidden_slice_order(data.get("slices"), problems)
        raise ManifestInvalid(problems + ([f"slices: {hidden}"] if hidden else [])) from None


# The fields the cross-field checks read to tell whose job runs: without them the checks would judge another workload.
_WORKLOAD_FIELDS = frozenset({"job", "axes", "combine"})


def _cross_field_problems(data: dict[str, Any], exc: ValidationError, stack: Settings | None) -> list[str]:
    """The checks across fields (agesweep.manifest_checks), which pydantic skips once any field is
    invalid: run on the manifest without its invalid top-level fields, keeping the problems of the
    fields that were valid, so every problem shows at once."""
    bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
    if not bad or bad & _WORKLOAD_FIELDS:
        return []
    try:
        Manifest.model_validate({k: v for k, v in data.items() if k not in bad}, context={"stack": stack or Settings()})
    except ValidationError as again:
        lines = format_errors(again, FieldTree(Manifest, SLICE_MODELS))
        return [line for line in lines if re.split(r"[.:\[]", line, maxsplit=1)[0] not in bad | {"manifest"}]
    return []


def _missing_for_trainer(data: dict[str, Any]) -> list[str]:
    """`ages`/`slices` missing from a trainer manifest, which pydantic leaves to the (skipped) model check."""
    job: Any = data.get("job") if isinstance(data.get("job"), dict) else {}
    own = "container" in job or ("definition" in job and "ages" not in data)
    return [] if own else [f"{name}: missing (required)" for name in ("ages", "slices") if name not in data]


def _hidden_slice_order(slices: Any, problems: list[str]) -> str | None:
    """The overlap check of a slice list, which pydantic skips once any one slice is invalid:
    run on the slices that are at least pairs of whole numbers, so every problem shows at once."""
    if not isinstance(slices, list) or any(p.startswith("slices: ") for p in problems):
        return None
    spans = [
        (i, s["start_index"], s["end_index"])
        for i, s in enumerate(slices)
        if isinstance(s, dict) and all(type(s.get(k)) is int for k in ("start_index", "end_index"))
    ]
    return slice_order_problem(spans)


def load_manifest(path: str, stack: Settings | None = None) -> Manifest:
    """Read and validate a manifest file (YAML or JSON)."""
    with open(path, "rb") as fh:
        raw = fh.read(MAX_MANIFEST_BYTES + 1)
    return parse_manifest(raw, path, stack)
