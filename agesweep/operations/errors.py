"""The operator's errors: one readable line for anything an operator can cause or fix."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from agesweep import aws
from agesweep.exit_codes import ExitCode


class OpsError(Exception):
    """A problem the operator can fix, explained in one line (the CLI exits 2)."""

    exit_code = ExitCode.INVALID


class StackNotFound(OpsError):
    pass


class RunNotFound(OpsError):
    pass


def _explain_client_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Error"), error.get("Message", "")
    if code in aws.CREDENTIAL_CODES:
        return f"AWS rejected the credentials ({code}): {message} — refresh them (aws sso login) or check the region"
    if aws.is_access_denied(exc):
        return f"access denied ({exc.operation_name}): {message}"
    return f"{exc.operation_name} failed: {code}: {message}"


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
        return _explain_client_error(exc)
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
