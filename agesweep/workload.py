"""Your own Batch job: an inline container spec the state machine registers as a job definition
revision, its `Ref::` placeholders, its environment and its secrets. Pure checks, no AWS.

Credentials never travel as plain environment: `secrets` name Secrets Manager secrets or SSM
parameters by ARN (the job definition's ``secrets``/``valueFrom``; the stack's job execution role
may read exactly the ARNs its AllowedSecretArns parameter lists).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

REF_RE = re.compile(r"Ref::([A-Za-z0-9_]+)")
IMAGE_RE = re.compile(
    r"^[a-z0-9][a-z0-9._-]*(?::\d+)?(?:/[a-z0-9][a-z0-9._-]*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$"
)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
PARAMETER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
_SECRET_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:(?:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}(?::[A-Za-z0-9_.-]*){0,3}"
    r"|ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9/_.-]{1,2048})$"
)
_CREDENTIAL_NAME_RE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE)
_URL_WITH_PASSWORD_RE = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:\s]+:[^/@\s]+@", re.IGNORECASE)
_AWS_ACCESS_KEY_RE = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
_AWS_SECRET_KEY_RE = re.compile(r"^[A-Za-z0-9/+]{40}$")
RESERVED_ENV_PREFIX = "AWS_BATCH"
MAX_COMMAND_ITEMS = 200


def _problem(text: str) -> PydanticCustomError:
    return PydanticCustomError("agesweep", text.replace("{", "{{").replace("}", "}}"))


def refs_in(command: list[str]) -> list[str]:
    """The `Ref::name` placeholders of a command, in order of first use."""
    seen: dict[str, None] = {}
    for part in command:
        for name in REF_RE.findall(part):
            seen.setdefault(name, None)
    return list(seen)


def credential_problem(name: str, value: str) -> str | None:
    """Why an environment variable looks like a credential (None when it does not)."""
    advice = "move it to `secrets`: NAME: arn:aws:secretsmanager:…:secret:… or arn:aws:ssm:…:parameter/…"
    if _URL_WITH_PASSWORD_RE.match(value):
        return f"{name}: a URL with user:password@ is a credential in plain text ({advice}, and build the URL in the job)"
    if _AWS_ACCESS_KEY_RE.search(value) or ("KEY" in name.upper() and _AWS_SECRET_KEY_RE.match(value)):
        return f"{name}: looks like an AWS access key ({advice}; better, give the job role the access)"
    if _CREDENTIAL_NAME_RE.search(name):
        return f"{name}: a name like *PASSWORD*, *SECRET* or *TOKEN* holds a credential ({advice})"
    return None


def _check_env_name(name: str) -> str:
    if not ENV_NAME_RE.match(name):
        raise _problem(f"{name!r} is not an environment variable name (A-Z a-z 0-9 _, not starting with a digit)")
    if name.upper().startswith(RESERVED_ENV_PREFIX):
        raise _problem(f"{name!r} starts with {RESERVED_ENV_PREFIX} (reserved: Batch sets those variables)")
    return name


def _check_secret_arn(value: str) -> str:
    if not _SECRET_ARN_RE.match(value):
        raise _problem(
            f"{value!r} is not a secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME "
            "or arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)"
        )
    return value


def _check_image(value: str) -> str:
    if not IMAGE_RE.match(value):
        raise _problem(
            f"{value!r} is not a pinned image (registry/repository:tag or repository@sha256:<digest>; no implicit latest)"
        )
    return value


def _check_parameter_name(name: str) -> str:
    if not PARAMETER_NAME_RE.match(name):
        raise _problem(f"{name!r} is not a parameter name (A-Z a-z 0-9 _, starting with a letter)")
    return name


def _scalar_to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        from agesweep.axes import number_label  # deferred: axes and workload stay independent

        return number_label(value)
    return value


PinnedImage = Annotated[str, AfterValidator(_check_image)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
SecretArn = Annotated[str, StringConstraints(min_length=1, max_length=2048), AfterValidator(_check_secret_arn)]
ParameterName = Annotated[str, AfterValidator(_check_parameter_name)]
ParameterValue = Annotated[str, BeforeValidator(_scalar_to_str), StringConstraints(max_length=4096)]
EnvValue = Annotated[str, BeforeValidator(_scalar_to_str), StringConstraints(max_length=8192)]


class ContainerSpec(BaseModel):
    """A job definition for this run: image, command with `Ref::` placeholders, resources, env, secrets."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    image: PinnedImage = Field(description="Image by digest (repo@sha256:…) or tag (repo:tag); a stack may require digests.")
    command: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=4096)]], Field(
        min_length=1, max_length=MAX_COMMAND_ITEMS
    )] = Field(description="The command; Ref::name is replaced by the point's axis value or a parameter.")
    vcpus: float = Field(1, ge=0.25, le=256, strict=False, description="vCPUs per job (default 1).")
    memory_mib: int = Field(2048, ge=256, le=2_097_152, description="Memory per job in MiB (default 2048).")
    gpus: int = Field(0, ge=0, le=16, description="GPUs per job (default 0).")
    timeout_minutes: int | None = Field(None, ge=1, le=20_160, description="Per-attempt timeout (default: the stack's).")
    environment: dict[EnvName, EnvValue] = Field(
        default_factory=dict, max_length=100, description="Plain environment: never credentials (use secrets)."
    )
    secrets: dict[EnvName, SecretArn] = Field(
        default_factory=dict, max_length=100,
        description="Env name → Secrets Manager secret or SSM parameter ARN (allowed by the stack's AllowedSecretArns).",
    )

