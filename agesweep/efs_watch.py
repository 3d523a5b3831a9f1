"""The EFS watcher: a manifest saved under the watched folder (default /data/manifests/) starts a run.

Every look (the scheduled WatchEfs Lambda, every minute; local mode every few seconds):

1. ``scan`` the folder (subfolders too; dotfiles and names not ending in .yaml/.yml/.json ignored);
2. ``settle`` it against the previous look kept in the stack bucket: a file is taken only once its
   size, mtime and inode are the same as one look earlier (half-written files are never read); a
   rename keeps what the old name had (taken or settling), a deletion is forgotten;
3. for each settled file: read it (at most MAX_MANIFEST_BYTES), then — once per (path, sha256),
   claimed with a conditional write — put it at ``manifests/efs/<path>`` with its EFS path and
   sha256 as object metadata. From there the S3 path starts the run as for any upload. A settled
   file that is not a readable manifest-sized regular file gets one SNS alert instead, also once.

Files already in the folder at the very first look (no state yet) are recorded, not run: deploying
the watcher onto a folder of old manifests starts nothing. Save one again (or ``touch`` it) to run it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import quote, unquote

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from agesweep.efs_claims import Marker, get_json, put_json, run_once
from agesweep.manifest_loading import MAX_MANIFEST_BYTES

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
UPLOAD_PREFIX = "manifests/efs/"
STATE_PREFIX = "efs-watch/"
STATE_KEY = f"{STATE_PREFIX}state.json"
# S3 user metadata of an uploaded manifest, the same members `agesweep submit` writes (boto3 reads
# them back without x-amz-meta-): source = efs:<path as jobs see it>, percent-encoded (metadata
# values must be ASCII), and sha256 of the bytes.
META_SOURCE = "source"
META_SHA256 = "sha256"
SOURCE_SCHEME = "efs:"
STALE_CLAIM_S = 900.0  # longer than the Lambda's timeout: a claim this old lost its watcher
SUBJECT_MAX = 100


class Look(BaseModel):
    """One entry of the folder as one look saw it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: int
    mtime_ns: int
    inode: int
    kind: Literal["file", "directory", "dangling-link", "other"]
    taken: str | None = Field(None, description="Handled at this size/mtime: 'sha256:<hex>', 'alert:<kind>' or 'baseline'.")

    def same_file(self, other: Look) -> bool:
        return (self.size, self.mtime_ns, self.inode, self.kind) == (other.size, other.mtime_ns, other.inode, other.kind)


class WatchState(BaseModel):
    """What the watcher remembers between looks (efs-watch/state.json in the stack bucket)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    looked_at: str | None = None
    looks: dict[str, Look] = Field(default_factory=dict, description="Path relative to the folder → its last look.")


class Taken(BaseModel):
    """What one look did with one settled file."""

    model_config = ConfigDict(extra="forbid")

    path: str
    outcome: Literal["uploaded", "uploaded_before", "in_progress", "alerted", "alerted_before", "changed_while_reading"]
    sha256: str | None = None
    key: str | None = None
    version_id: str | None = None
    problem: str | None = None


class WatchResult(BaseModel):
    """The WatchEfs Lambda's answer for one look (logged; read by tests and people)."""

    model_config = ConfigDict(extra="forbid")

    folder: str
    files: int
    settling: list[str]
    renamed: dict[str, str] = Field(default_factory=dict, description="New path → old path.")
    taken: list[Taken]
    baseline: bool = False
    state_saved: bool


# ------------------------------------------------------------------ pure: scan and settle


def _look(entry: os.DirEntry[str]) -> Look:
    info = entry.stat(follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        try:
            info = entry.stat(follow_symlinks=True)
        except OSError:
            return Look(size=info.st_size, mtime_ns=info.st_mtime_ns, inode=info.st_ino, kind="dangling-link")
    if stat.S_ISREG(info.st_mode):
        kind: Literal["file", "directory", "other"] = "file"
    else:
        kind = "directory" if stat.S_ISDIR(info.st_mode) else "other"
    return Look(size=info.st_size, mtime_ns=info.st_mtime_ns, inode=info.st_ino, kind=kind)


def _walk(folder: Path, relative: PurePosixPath) -> Iterator[tuple[str, Look]]:
    try:
        entries = sorted(os.scandir(folder / relative), key=lambda e: e.name)
    except OSError:  # gone or unreadable between two looks: nothing to see there now
        return
    for entry in entries:
        if entry.name.startswith("."):  # editors' swap files, rsync's temporaries, .snapshot
            continue
        path = relative / entry.name
        is_manifest = entry.name.lower().endswith(MANIFEST_SUFFIXES)
        try:
            if entry.is_dir(follow_symlinks=False) and not is_manifest:
                yield from _walk(folder, path)
            elif is_manifest:
                yield str(path), _look(entry)
        except OSError:
            continue


def scan(folder: Path) -> dict[str, Look]:
    """Every manifest-named entry under ``folder`` (path relative to it → how it looks now)."""
    return dict(_walk(folder, PurePosixPath(".")))


def _renames(previous: dict[str, Look], current: dict[str, Look]) -> dict[str, str]:
    """New paths that are a vanished path renamed (same inode, size and mtime): new → old."""
    vanished = {(look.inode, look.size, look.mtime_ns): path for path, look in previous.items() if path not in current}
    return {
        path: vanished[(look.inode, look.size, look.mtime_ns)]
        for path, look in current.items()
        if path not in previous and (look.inode, look.size, look.mtime_ns) in vanished
    }


def settle(previous: WatchState | None, current: dict[str, Look]) -> tuple[dict[str, Look], list[str], dict[str, str]]:
    """The next state's looks, the paths to act on now (settled and not handled) and the renames.

    Without a previous state every file is recorded as the baseline and nothing is acted on.
    """
    if previous is None:
        return {path: look.model_copy(update={"taken": "baseline"}) for path, look in current.items()}, [], {}
    renamed = _renames(previous.looks, current)
    looks: dict[str, Look] = {}
    due: list[str] = []
    for path, look in current.items():
        before = previous.looks.get(path) or previous.looks.get(renamed.get(path, ""))
        if before is None or not before.same_file(look):
            looks[path] = look  # new or changed: look again next time
        elif before.taken:
            looks[path] = before
        else:
            looks[path] = before
            due.append(path)
    return looks, due, renamed


# ------------------------------------------------------------------ naming


def upload_key(path: str) -> str:
    return UPLOAD_PREFIX + path


def container_path(folder: str, path: str) -> str:
    """The path as a Batch job (and a person on the file system) sees it, e.g. /data/manifests/x.yaml."""
    return str(PurePosixPath(folder) / path)


def source_from_metadata(metadata: dict[str, str]) -> str | None:
    """ManifestRef.source of an uploaded manifest: ``efs:/data/manifests/x.yaml`` (the watcher,
    ``agesweep submit --efs``) or ``file:x.yaml`` (``agesweep submit``); None for a plain upload."""
    encoded = metadata.get(META_SOURCE)
    return unquote(encoded) if encoded else None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def claim_key(path: str, sha256: str) -> str:
    return f"{STATE_PREFIX}claims/{_digest(path, sha256)}.json"


def alert_key(path: str, problem_kind: str, look: Look) -> str:
    fingerprint = f"{look.size}:{look.mtime_ns}" if look.kind == "file" else look.kind
    return f"{STATE_PREFIX}alerts/{_digest(path, problem_kind, fingerprint)}.json"


# ------------------------------------------------------------------ reading one settled file


class Unusable(Exception):
    """A settled entry that is not a manifest the watcher can upload (the alert says why)."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind, self.reason = kind, reason
        super().__init__(reason)


_NOT_A_FILE = {
    "directory": "it is a directory, not a file",
    "dangling-link": "it is a symbolic link whose target does not exist",
    "other": "it is not a regular file (a socket, FIFO or device)",
}


def read_settled(file: Path, look: Look) -> bytes | None:
    """The file's bytes if it still looks as ``look`` did; None when it changed while being read."""
    if look.kind != "file":
        raise Unusable(look.kind, _NOT_A_FILE[look.kind])
    if look.size > MAX_MANIFEST_BYTES:
        raise Unusable("oversized", f"it is {look.size:,} bytes; a manifest is at most {MAX_MANIFEST_BYTES:,} bytes")
    try:
        with file.open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
            after = os.fstat(fh.fileno())
    except OSError as exc:
        raise Unusable("unreadable", f"it cannot be read: {exc.strerror or exc}") from None
    if (after.st_size, after.st_mtime_ns) != (look.size, look.mtime_ns) or len(raw) != look.size:
        return None
    return raw


# ------------------------------------------------------------------ the watcher


class Watcher:
    """One look at the folder, with the stack bucket as its memory and the topic for its alerts."""

    def __init__(
        self, s3: Any, sns: Any, *, bucket: str, topic_arn: str, folder: str, mount: Path, stale_after_s: float = STALE_CLAIM_S
    ) -> None:
        self.s3, self.sns = s3, sns
        self.bucket, self.topic_arn = bucket, topic_arn
        self.folder = folder  # as jobs see it: /data/manifests/
        self.root = mount  # where this process sees it
        self.stale_after_s = stale_after_s

    def look(self, now: dt.datetime, max_actions: int = 50) -> WatchResult:
        found = get_json(self.s3, self.bucket, STATE_KEY)
        previous, etag = (WatchState.model_validate(found[0]), found[1]) if found else (None, None)
        looks, due, renamed = settle(previous, scan(self.root))
        taken: list[Taken] = []
        for path in due[:max_actions]:
            outcome = self._take(path, looks[path], now)
            taken.append(outcome)
            if outcome.outcome in {"uploaded", "uploaded_before"}:
                looks[path] = looks[path].model_copy(update={"taken": f"sha256:{outcome.sha256}"})
            elif outcome.outcome in {"alerted", "alerted_before"}:
                looks[path] = looks[path].model_copy(update={"taken": f"alert:{outcome.problem}"})
            elif outcome.outcome == "changed_while_reading":
                looks.pop(path)  # seen afresh next time
        state = WatchState(looked_at=now.isoformat(), looks=looks)
        saved = True
        if previous is None or state.looks != previous.looks:
            saved = put_json(self.s3, self.bucket, STATE_KEY, state.model_dump(mode="json"), if_match=etag) is not None
        settling = sorted(p for p, look in looks.items() if not look.taken and p not in due)
        return WatchResult(
            folder=self.folder, files=len(looks), settling=settling, renamed=renamed, taken=taken,
            baseline=previous is None, state_saved=saved,
        )

    def _take(self, path: str, look: Look, now: dt.datetime) -> Taken:
        try:
            raw = read_settled(self.root / path, look)
        except Unusable as problem:
            return self._alert(path, look, problem, now)
        if raw is None:
            return Taken(path=path, outcome="changed_while_reading")
        sha = hashlib.sha256(raw).hexdigest()
        key = upload_key(path)
        marker = Marker(self.bucket, claim_key(path, sha), {"path": path, "sha256": sha, "key": key})
        when, result = run_once(
            self.s3, marker, lambda: self._upload(path, key, raw, sha),
            now=now, stale_after_s=self.stale_after_s, already_done=lambda: self._uploaded(key, sha),
        )
        outcome: dict[str, Literal["uploaded", "uploaded_before", "in_progress"]] = {
            "now": "uploaded", "before": "uploaded_before", "in_progress": "in_progress"
        }
        return Taken(path=path, outcome=outcome[when], sha256=sha, key=key, version_id=(result or {}).get("version_id"))

    def _upload(self, path: str, key: str, raw: bytes, sha: str) -> dict[str, Any]:
        metadata = {META_SOURCE: quote(SOURCE_SCHEME + container_path(self.folder, path), safe="/:"), META_SHA256: sha}
        put = self.s3.put_object(Bucket=self.bucket, Key=key, Body=raw, Metadata=metadata)
        return {"key": key, "version_id": put.get("VersionId")}

    def _uploaded(self, key: str, sha: str) -> dict[str, Any] | None:
        """The upload a dead claimant made, if the object's current version is this content."""
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return None
        if head.get("Metadata", {}).get(META_SHA256) != sha:
            return None
        return {"key": key, "version_id": head.get("VersionId")}

    def _alert(self, path: str, look: Look, problem: Unusable, now: dt.datetime) -> Taken:
        shown = container_path(self.folder, path)
        subject = f"agesweep: manifest on EFS not taken: {PurePosixPath(path).name}"[:SUBJECT_MAX]
        message = (
            f"The EFS manifest watcher cannot start a run from {shown}:\n"
            f"  {problem.reason}.\n\n"
            f"Nothing was uploaded and no run started. Save it again as a regular file of at most "
            f"{MAX_MANIFEST_BYTES:,} bytes that the stack's access point user can read; a changed "
            f"file is looked at afresh.\n"
            f"Watched folder: {self.folder} (uploads go to s3://{self.bucket}/{UPLOAD_PREFIX})"
        )

        def publish() -> dict[str, Any]:
            sent = self.sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=message)
            return {"message_id": sent.get("MessageId")}

        marker = Marker(self.bucket, alert_key(path, problem.kind, look), {"path": path, "problem": problem.kind})
        when, _ = run_once(self.s3, marker, publish, now=now, stale_after_s=self.stale_after_s)
        if when == "in_progress":
            return Taken(path=path, outcome="in_progress", problem=problem.kind)
        return Taken(path=path, outcome="alerted" if when == "now" else "alerted_before", problem=problem.kind)


def mount_folder(folder: str, data_mount: str, data_root: str = "/data") -> Path:
    """Where the watched folder is for this process: /data/manifests/ under a mount of /data."""
    relative = PurePosixPath(folder).relative_to(data_root)
    return Path(data_mount) / relative
