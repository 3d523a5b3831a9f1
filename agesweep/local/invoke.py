"""`agesweep local invoke`: `sam local invoke` without a container engine. One function of template.yaml,
by logical id, runs its real handler in this process through local mode's Lambda machinery
(agesweep.local.lambdas), on the local stack, with an event from events/."""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agesweep.local.cloud import REPO_ROOT, LocalCloud

# The bucket the sample events in events/ name (an account's dev stack); seeded on the local server.
SAMPLE_BUCKET = "agesweep-dev-bucket-1a2b3c4d5e6f"
SAMPLE_MANIFESTS = REPO_ROOT / "events" / "manifests"


class UnknownFunction(LookupError):
    """The logical id names no AWS::Serverless::Function of template.yaml."""


@dataclass
class Invocation:
    """What the handler returned (or the `{"errorType", "errorMessage"}` of what it raised) and its log."""

    payload: Any
    errored: bool
    log: str


def function_ids(cloud: LocalCloud) -> list[str]:
    return sorted(cloud.spec.functions)


def manifest_target(event: Any) -> tuple[str, str] | None:
    """(bucket, key) of the manifest version a ValidateManifest input (bucket/key/version_id) names."""
    if isinstance(event, dict) and all(isinstance(event.get(field), str) for field in ("bucket", "key", "version_id")):
        return event["bucket"], event["key"]
    return None


def sample_manifest(key: str) -> Path:
    """The manifest seeded for a sample event: events/manifests/<the key's file name>, else demo.yaml."""
    named = SAMPLE_MANIFESTS / Path(key).name
    return named if named.is_file() else SAMPLE_MANIFESTS / "demo.yaml"


def seed_manifest(cloud: LocalCloud, event: Any, manifest: Path | None) -> Any:
    """Put the manifest a ValidateManifest event names into the local server, so the handler finds it.

    With `manifest`, that file goes under the event's (bucket, key); without, only an event of the
    sample bucket is seeded (from events/manifests/). The bucket is made if missing (versioned), and
    the event's version id becomes the version just created. Returns the event as invoked.
    """
    target = manifest_target(event)
    if target is None:
        return event
    bucket, key = target
    if manifest is None and bucket != SAMPLE_BUCKET:
        return event
    s3 = cloud.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    body = (manifest or sample_manifest(key)).read_bytes()
    version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    return {**event, "version_id": version}


def invoke(cloud: LocalCloud, logical_id: str, event: Any) -> Invocation:
    """Run the function's handler once, as the Lambda runtime would; its stdout and log lines are
    returned as the log (never mixed into the payload)."""
    if logical_id not in cloud.spec.functions:
        raise UnknownFunction(f"{logical_id} is not a function of template.yaml (its functions: {', '.join(function_ids(cloud))})")
    name = cloud.resources.names.physical(logical_id)
    arn = cloud.resources.names.attribute(logical_id, "Arn")
    log_file = cloud.plumbing.log_file
    log_file.flush()
    start = cloud.lambda_log.stat().st_size
    with contextlib.redirect_stdout(sys.stderr):
        payload, errored, _ = cloud.lambdas.invoke(name, arn, event)
    log_file.flush()
    with cloud.lambda_log.open("rb") as log:
        log.seek(start)
        text = log.read().decode("utf-8", errors="replace")
    result = json.loads(payload)
    if errored:
        result = {"errorType": result.get("errorType"), "errorMessage": result.get("errorMessage")}
    return Invocation(payload=result, errored=errored, log=text)
