"""The deployed stack's settings as its Lambdas see them: resource names, defaults and limits.

The same model serves the CLI (no AWS: defaults, or the env if set) and the validate Lambda (env
vars set by template.yaml), so a manifest validates the same way in both places.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from agesweep.errors import SettingsInvalid

DEFAULT_AGE_MIN = 40
DEFAULT_AGE_MAX = 79

# Shown in offline plans (CLI without a stack) where the Lambda would have the stack's ARNs.
OFFLINE_JOB_QUEUE = "<stack job queue>"
OFFLINE_JOB_DEFINITION = "<stack job definition>"


_ENV_OF_FIELD = {"age_min": "AGE_MIN", "age_max": "AGE_MAX", "bucket_name": "BUCKET_NAME",
                 "job_queue": "JOB_QUEUE_ARN", "job_definition": "JOB_DEFINITION_ARN", "allowed_buckets": "ALLOWED_BUCKETS"}


def _env_problem(error: ErrorDetails) -> str:
    """One pydantic error on a setting as `VAR: what is wrong`, naming the env var, not the field."""
    field = str(error["loc"][0]) if error["loc"] else ""
    if field in _ENV_OF_FIELD:
        return f"{_ENV_OF_FIELD[field]}: {error['input']!r} is not allowed ({error['msg']})"
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
    # the job definition in template.yaml (the seed's 32 vCPU / 128 GiB, 4 h, 3 attempts).
    default_vcpus: int = Field(32, ge=1)
    default_memory_mib: int = Field(131072, ge=1)
    default_timeout_minutes: int = Field(240, ge=1)
    default_attempts: int = Field(3, ge=1, le=10)

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

    def bucket_allowed(self, bucket: str) -> bool:
        return self.s3_unrestricted or bucket in self.buckets

    def results_uri(self, run_id: str) -> str:
        """Where the run's small results (metrics JSON, summary) land; `none` without a bucket."""
        return f"s3://{self.bucket_name}/runs/{run_id}/" if self.bucket_name else "none"

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
        if get("ALLOWED_BUCKETS"):
            values["allowed_buckets"] = frozenset(
                b.strip() for b in (get("ALLOWED_BUCKETS") or "").split(",") if b.strip()
            )
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsInvalid([_env_problem(error) for error in exc.errors(include_url=False)]) from None
