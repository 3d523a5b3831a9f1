"""Durable, race-free memory of the EFS watcher in the stack bucket: S3 conditional writes only.

- the watcher's state (the last look at every file) is one object, written with ``If-Match`` on the
  ETag it was read with (or ``If-None-Match: *`` the first time): of two concurrent watchers, one wins;
- "do this once" (upload a manifest version, send an alert) is a marker object created with
  ``If-None-Match: *`` before the action and completed with ``If-Match`` after it; a claim left
  incomplete by a watcher that died is taken over, once, when it is older than ``stale_after_s``.

S3 answers a lost race with 412 PreconditionFailed (409 ConditionalRequestConflict when two
conditional writes overlap); both mean "someone else has it". moto 5.2.5 implements both headers on
PutObject (s3/responses.py: put_object).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from agesweep import aws

LOST_RACE_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})

Once = Literal["now", "before", "in_progress"]


def lost_race(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return aws.error_code(exc) in LOST_RACE_CODES or status in {409, 412}


def put_json(s3: Any, bucket: str, key: str, body: Any, *, if_match: str | None = None) -> str | None:
    """Create (no ``if_match``) or replace (``if_match`` = the ETag read) a JSON object; its new
    ETag, or None when another writer got there first."""
    condition = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
    try:
        put = s3.put_object(
            Bucket=bucket, Key=key, Body=json.dumps(body, sort_keys=True).encode(), ContentType="application/json", **condition
        )
    except ClientError as exc:
        if lost_race(exc):
            return None
        raise
    return str(put["ETag"])


def get_json(s3: Any, bucket: str, key: str) -> tuple[Any, str] | None:
    """(body, ETag) of a JSON object, None when there is none."""
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if aws.is_not_found(exc):
            return None
        raise
    return json.loads(obj["Body"].read()), str(obj["ETag"])


def _age_s(marker: dict[str, Any], now: dt.datetime) -> float:
    try:
        claimed = dt.datetime.fromisoformat(str(marker.get("claimed_at")))
    except ValueError:
        return float("inf")
    return (now - claimed).total_seconds()


@dataclass(frozen=True)
class Marker:
    """A do-once marker: where it lives and what it records about the action."""

    bucket: str
    key: str
    record: dict[str, Any]


def run_once(
    s3: Any,
    marker: Marker,
    act: Callable[[], dict[str, Any]],
    *,
    now: dt.datetime,
    stale_after_s: float,
    already_done: Callable[[], dict[str, Any] | None] | None = None,
) -> tuple[Once, dict[str, Any] | None]:
    """Run ``act`` at most once per marker, whatever runs concurrently or dies half-way.

    "now": this call acted (its result); "before": an earlier call did (its recorded result);
    "in_progress": another call holds a fresh claim. ``already_done`` (taking over a stale claim)
    says whether the dead claimant's action had in fact happened, so it is not done twice.
    """
    claim = {**marker.record, "status": "claimed", "claimed_at": now.isoformat()}
    etag = put_json(s3, marker.bucket, marker.key, claim)
    if etag is None:
        found = get_json(s3, marker.bucket, marker.key)
        if found is None:  # the claim vanished between the two requests: leave it to the next look
            return "in_progress", None
        existing, existing_etag = found
        if existing.get("status") == "done":
            return "before", existing.get("result")
        if _age_s(existing, now) < stale_after_s:
            return "in_progress", None
        etag = put_json(s3, marker.bucket, marker.key, claim, if_match=existing_etag)
        if etag is None:
            return "in_progress", None
        result = already_done() if already_done else None
        if result is not None:
            put_json(s3, marker.bucket, marker.key, {**claim, "status": "done", "result": result}, if_match=etag)
            return "before", result
    result = act()
    put_json(s3, marker.bucket, marker.key, {**claim, "status": "done", "result": result}, if_match=etag)
    return "now", result
