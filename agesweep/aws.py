"""The AWS helpers every part shares: clients, error classes, S3 URIs, batched Batch reads, capped reads.

Clients honour boto3's own configuration (``AWS_ENDPOINT_URL``, profiles, region), so the same code
reaches AWS or local mode's moto server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

DESCRIBE_JOBS_BATCH = 100  # DescribeJobs takes at most 100 job ids
# Every status ListJobs knows, terminal ones first: after a finished array job one call suffices.
LIST_STATUSES = ("SUCCEEDED", "FAILED", "RUNNING", "STARTING", "RUNNABLE", "PENDING", "SUBMITTED")
# Batch, S3 and ECR throttle at modest rates; adaptive mode backs off client-side too.
RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10})

# Error codes that mean "that thing does not exist" across S3, Batch, ECR, CloudFormation and Logs.
NOT_FOUND_CODES = frozenset({
    "404", "NotFound", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "RepositoryNotFoundException",
    "ImageNotFoundException", "ResourceNotFoundException", "ExecutionDoesNotExist", "StateMachineDoesNotExist",
})
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403", "Forbidden"})
CREDENTIAL_CODES = frozenset({
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
    "InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure",
})

# Members whose values are user maps (keys chosen by people, never re-cased), in both casings.
USER_MAP_MEMBERS = frozenset({"parameters", "tags", "options", "labels", "annotations", "dockerLabels"})

_clients: dict[tuple[str, str | None, str | None], Any] = {}


def region_from_env() -> str:
    """The region boto3 would use, with us-east-1 when nothing is configured (console links only)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def client(service: str) -> Any:
    """A client made once per process and reused by warm Lambda invocations.

    Keyed by endpoint and region too, so local mode's in-process handlers get a new client for a
    new moto server.
    """
    key = (service, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    if key not in _clients:
        _clients[key] = new_client(service, config=RETRY_CONFIG)
    return _clients[key]


def new_client(service: str, session: boto3.session.Session | None = None, **options: Any) -> Any:
    """A new client of a service named at run time (boto3 types ``client()`` per literal name)."""
    make: Callable[..., Any] = (session or boto3.session.Session()).client
    return make(service, **options)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and (
        error_code(exc) in NOT_FOUND_CODES or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404
    )


def is_access_denied(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) in ACCESS_DENIED_CODES


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` → ("bucket", "some/key"). Raises ValueError for anything else."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def s3_prefix(uri: str) -> tuple[str, str]:
    """An s3:// folder URI → (bucket, prefix ending in '/' unless empty)."""
    bucket, prefix = split_s3_uri(uri)
    return bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"


class ObjectTooLarge(Exception):
    """An object is larger than the reader allows (the body was not read)."""

    def __init__(self, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(f"{size:,} bytes is too large (at most {limit:,} bytes)")


def read_object(s3: Any, bucket: str, key: str, version_id: str | None = None, *, max_bytes: int) -> bytes:
    """The exact object version, size-checked before the body is read. ClientErrors propagate."""
    request: dict[str, Any] = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    obj = s3.get_object(**request)
    size = int(obj.get("ContentLength", 0))
    if size > max_bytes:
        obj["Body"].close()
        raise ObjectTooLarge(size, max_bytes)
    body: bytes = obj["Body"].read(max_bytes + 1)
    if len(body) > max_bytes:
        raise ObjectTooLarge(len(body), max_bytes)
    return body


def chunks(items: Sequence[str], size: int = DESCRIBE_JOBS_BATCH) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def describe_jobs(batch: Any, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """DescribeJobs, 100 ids per call, keyed by job id; ids Batch no longer knows are simply absent."""
    ids = sorted({j for j in job_ids if j})
    found: dict[str, dict[str, Any]] = {}
    for part in chunks(ids):
        for job in batch.describe_jobs(jobs=list(part))["jobs"]:
            found[job["jobId"]] = job
    return found


def list_jobs(batch: Any, *, statuses: Sequence[str] = LIST_STATUSES, stop_at: int = 0, **where: str) -> dict[str, dict[str, Any]]:
    """ListJobs summaries (every page) per status, keyed by job id; ``where`` is ``jobQueue=`` or
    ``arrayJobId=``. With ``stop_at``, statuses after the one that reached that many are not asked."""
    seen: dict[str, dict[str, Any]] = {}
    paginator = batch.get_paginator("list_jobs")
    for status in statuses:
        for page in paginator.paginate(jobStatus=status, **where):
            for summary in page.get("jobSummaryList", []):
                seen[summary["jobId"]] = summary
        if stop_at and len(seen) >= stop_at:
            break
    return seen


def array_children(batch: Any, array_job_id: str, size: int) -> list[dict[str, Any]]:
    """All children of an array job, described (a child Batch cannot describe keeps its summary)."""
    seen = list_jobs(batch, arrayJobId=array_job_id, stop_at=size)
    described = describe_jobs(batch, seen)
    return [described.get(job_id, summary) for job_id, summary in seen.items()]


def _recase(value: Any, first: Any, key: str | None) -> Any:
    if isinstance(value, list):
        return [_recase(item, first, None) for item in value]
    if isinstance(value, dict):
        if key is not None and key[:1].lower() + key[1:] in USER_MAP_MEMBERS:
            return dict(value)
        return {(first(k[:1]) + k[1:] if isinstance(k, str) else k): _recase(v, first, k) for k, v in value.items()}
    return value


def camel_case(value: Any) -> Any:
    """PascalCase members (Step Functions' job descriptions, CloudFormation properties) → camelCase
    (the Batch API's); user maps such as parameters and tags keep their keys."""
    return _recase(value, str.lower, None)


def pascal_case(value: Any) -> Any:
    """camelCase members (Batch API output) → PascalCase (what Step Functions' aws-sdk tasks take)."""
    return _recase(value, str.upper, None)
