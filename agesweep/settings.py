"""The deployed stack's settings as its Lambdas see them: resource names, defaults and limits.

The same model serves the CLI (no AWS: defaults, or the env if set) and the validate Lambda (env
vars set by template.yaml), so a manifest validates the same way in both places.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from agesweep.contracts import Prices
from agesweep.errors import SettingsInvalid
from agesweep.pricing import DEFAULT_PRICES
from agesweep.runs import run_prefix

DEFAULT_AGE_MIN = 40
DEFAULT_AGE_MAX = 79

# Shown in offline plans (CLI without a stack) where the Lambda would have the stack's ARNs.
OFFLINE_JOB_QUEUE = "<stack job queue>"
OFFLINE_JOB_DEFINITION = "<stack job definition>"


_ENV_OF_FIELD = {"age_min": "AGE_MIN", "age_max": "AGE_MAX", "bucket_name": "BUCKET_NAME",
                 "job_queue": "JOB_QUEUE_ARN", "job_definition": "JOB_DEFINITION_ARN", "allowed_buckets": "ALLOWED_BUCKETS",
                 "prices": "PRICES_JSON", "local": "AGESWEEP_LOCAL",
                 "allowed_job_definitions": "ALLOWED_JOB_DEFINITIONS", "allowed_secrets": "ALLOWED_SECRET_ARNS",
                 "require_image_digest": "REQUIRE_IMAGE_DIGEST", "job_role_arn": "JOB_ROLE_ARN",
                 "job_execution_role_arn": "JOB_EXECUTION_ROLE_ARN", "efs_file_system_id": "EFS_FILE_SYSTEM_ID",
                 "efs_access_point_id": "EFS_ACCESS_POINT_ID"}
_LIST_FIELDS = ("allowed_buckets", "allowed_job_definitions", "allowed_secrets")
_TRUE = frozenset({"1", "true", "yes", "on"})
LOCAL_ENV = "AGESWEEP_LOCAL"  # set by local mode (agesweep/local/cloud.py) for its in-process Lambdas


def _env_problem(error: ErrorDetails) -> str:
    """One pydantic error on a setting as `VAR: what is wrong`, naming the env var, not the field."""
    field = str(error["loc"][0]) if error["loc"] else ""
    if field in _ENV_OF_FIELD:
        member = "".join(f".{part}" for part in error["loc"][1:])  # e.g. PRICES_JSON.vcpu_hour_spot
        return f"{_ENV_OF_FIELD[field]}{member}: {error['input']!r} is not allowed ({error['msg']})"
    message = str(error["msg"]).removeprefix("Value error, ")
    return message


class Settings(BaseModel):
    """What the deployed stack provides: its bucket, queue, job definition and allowed ranges."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket_name: str | None = Field(None, description="The stack bucket (BUCKET_NAME); always allowed for s3:// paths.")
    job_queue: str | None = Field(None, description="Default job queue ARN (JOB_QUEUE_ARN).")
    job_definition: str | None = Field(None, description="Default job definition ARN:revision (JOB_DEFINITION_ARN).")
    age_min: int = Field(DEFAULT_AGE_MIN, ge=0, le=150, description="Lowest age a manifest may name (AGE_MIN).")
    age_max: int = Field(DEFAULT_AGE_MAX, ge=0, le=150, description="Highest age a manifest may name (AGE_MAX).")
    allowed_buckets: frozenset[str] = Field(
        frozenset(), description="Extra buckets s3:// inputs/outputs may use (ALLOWED_BUCKETS, comma list)."
    )
    # Used for plan defaults and estimates when the manifest does not override them; they mirror
    # the job definition in template.yaml (JobVcpus, JobMemoryMiB, JobTimeoutSeconds). Sized by
    # measurement, not copied from the seed (which asked 32 vCPU / 128 GiB): the trainer runs on 2
    # threads and peaks at 2.0 GB RSS at 10,000 patients x 348 diseases x 52 times, so 2 vCPU and
    # 3840 MiB, what agesweep.collation.resources.recommend() answers for those figures.
    default_vcpus: int = Field(2, ge=1)
    default_memory_mib: int = Field(3840, ge=1)
    default_timeout_minutes: int = Field(240, ge=1)
    default_attempts: int = Field(3, ge=1, le=10)
    prices: Prices = Field(
        DEFAULT_PRICES, description="Prices of estimates and incurred costs (PRICES_JSON: a JSON object of Prices members)."
    )
    local: bool = Field(False, description="Running in local mode (AGESWEEP_LOCAL=1): costs are 'if run on AWS'.")
    allowed_job_definitions: frozenset[str] = Field(
        frozenset(), description="Job definition names a manifest may name in job.definition (ALLOWED_JOB_DEFINITIONS, comma list)."
    )
    allowed_secrets: frozenset[str] = Field(
        frozenset(), description="Secret / SSM parameter ARNs a manifest's secrets may name (ALLOWED_SECRET_ARNS, comma list)."
    )
    require_image_digest: bool = Field(False, description="Images only by digest, never by tag (REQUIRE_IMAGE_DIGEST).")
    job_role_arn: str | None = Field(None, description="The role inline job definitions run as (JOB_ROLE_ARN).")
    job_execution_role_arn: str | None = Field(
        None, description="The role Batch pulls images and reads secrets with (JOB_EXECUTION_ROLE_ARN)."
    )
    efs_file_system_id: str | None = Field(None, description="The stack's EFS, mounted at /data (EFS_FILE_SYSTEM_ID).")
    efs_access_point_id: str | None = Field(None, description="Its access point (EFS_ACCESS_POINT_ID).")

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Settings:
        if self.age_min > self.age_max:
            raise ValueError(f"AGE_MIN {self.age_min} is above AGE_MAX {self.age_max}")
        return self

    @property
    def s3_unrestricted(self) -> bool:
        """No bucket configured at all (offline CLI): s3:// paths are checked for syntax only."""
        return self.bucket_name is None and not self.allowed_buckets

    @property
    def buckets(self) -> frozenset[str]:
        """Every bucket a manifest may read from or write to."""
        return self.allowed_buckets | ({self.bucket_name} if self.bucket_name else set())

    @property
    def deployed(self) -> bool:
        """Settings of a stack (its job definition known), not the offline CLI's defaults."""
        return self.job_definition is not None

    def definition_allowed(self, name: str) -> bool:
        """The stack's own family, or one its AllowedJobDefinitions parameter lists (offline: any)."""
        family = definition_family(name)
        return not self.deployed or family == definition_family(self.job_definition or "") or family in self.allowed_job_definitions

    def secret_allowed(self, arn: str) -> bool:
        """An ARN the stack's AllowedSecretArns lists (offline: any); a trailing * matches a prefix."""
        if not self.deployed:
            return True
        return any(arn == a or (a.endswith("*") and arn.startswith(a[:-1])) for a in self.allowed_secrets)

    def bucket_allowed(self, bucket: str) -> bool:
        return self.s3_unrestricted or bucket in self.buckets

    def results_uri(self, run_id: str) -> str:
        """Where the run's small results (metrics JSON, summary) land; `none` without a bucket."""
        return f"s3://{self.bucket_name}/{run_prefix(run_id)}" if self.bucket_name else "none"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build from the env vars named in docs/internals.md; unset or empty vars keep defaults."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        values: dict[str, object] = {
            "bucket_name": get("BUCKET_NAME"),
            "job_queue": get("JOB_QUEUE_ARN"),
            "job_definition": get("JOB_DEFINITION_ARN"),
        }
        for field, var in (("age_min", "AGE_MIN"), ("age_max", "AGE_MAX")):
            if get(var) is not None:
                values[field] = get(var)
        for field in _LIST_FIELDS:
            listed = get(_ENV_OF_FIELD[field])
            if listed:
                values[field] = frozenset(b.strip() for b in listed.split(",") if b.strip())
        for field in ("job_role_arn", "job_execution_role_arn", "efs_file_system_id", "efs_access_point_id"):
            values[field] = get(_ENV_OF_FIELD[field])
        values["require_image_digest"] = (get("REQUIRE_IMAGE_DIGEST") or "").lower() in _TRUE
        if get("PRICES_JSON"):
            values["prices"] = _prices_from_json(get("PRICES_JSON") or "")
        values["local"] = local_mode(env)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsInvalid([_env_problem(error) for error in exc.errors(include_url=False)]) from None


def definition_family(definition_ref: str) -> str:
    """A job definition's family (its name): `agesweep-train` of `arn:…:job-definition/agesweep-train:3`."""
    return definition_ref.rsplit("/", 1)[-1].split(":", 1)[0]


def local_mode(environ: Mapping[str, str] | None = None) -> bool:
    """AGESWEEP_LOCAL=1: local mode runs this process's Lambdas (costs are 'if run on AWS'; no
    console to link to, no container image)."""
    env = os.environ if environ is None else environ
    return env.get(LOCAL_ENV, "").strip().lower() in _TRUE


def _prices_from_json(text: str) -> object:
    """PRICES_JSON: the members it names replace the dated defaults (validated with the Settings)."""
    try:
        override = json.loads(text)
    except ValueError as exc:
        raise SettingsInvalid([f"PRICES_JSON: not JSON ({exc})"]) from None
    if not isinstance(override, dict):
        raise SettingsInvalid(["PRICES_JSON: must be a JSON object of price members (e.g. {\"vcpu_hour_spot\": 0.02})"])
    return {**DEFAULT_PRICES.model_dump(), **override}
