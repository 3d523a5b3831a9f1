"""`agesweep retry`: the documents of a finished run's retry manifest, ready to submit."""

from __future__ import annotations

import yaml
from botocore.exceptions import ClientError

from agesweep import aws

# The collation's reading of retry-manifest.yaml; moving to agesweep.collation.retry (this is the one import).
from agesweep.collation.retry import retry_documents
from agesweep.operations.deployment import DeployedStack
from agesweep.operations.errors import OpsError, aws_errors
from agesweep.operations.executions import Execution, describe_run
from agesweep.runs import run_prefix


def _no_retry_manifest(execution: Execution) -> OpsError:
    return OpsError(
        f"run {execution.run_id} has no retry manifest ({execution.status}"
        + (f": {execution.error}" if execution.error else "")
        + "): it ended before collation; fix the cause and submit the original manifest again"
    )


def retry_manifests(stack: DeployedStack, run: str) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each document of runs/<run_id>/retry-manifest.yaml; [] when nothing failed.

    Each document is named after its own run_name (`<run>-retry.yaml`), which keeps a retry's
    run id readable and makes submitting the same retry twice start one run.
    """
    execution = describe_run(stack, run)
    if execution.running:
        raise OpsError(f"run {execution.run_id} is still running: its retry manifest is written when it ends")
    key = f"{run_prefix(execution.run_id)}retry-manifest.yaml"
    with aws_errors():
        try:
            text = stack.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode("utf-8")
        except ClientError as exc:
            if not aws.is_not_found(exc):
                raise
            raise _no_retry_manifest(execution) from exc
    documents = []
    for document in retry_documents(text):
        name = str((yaml.safe_load(document) or {}).get("run_name") or f"{execution.run_id}-retry")
        documents.append((f"{name}.yaml", document.encode("utf-8")))
    return documents
