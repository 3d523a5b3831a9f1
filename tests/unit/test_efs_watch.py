"""The EFS watcher's pure parts (scan, settle) and its S3 memory (state, do-once claims) on mock_aws."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agesweep import efs_claims
from agesweep.efs_watch import (
    META_SHA256,
    META_SOURCE,
    STATE_KEY,
    Look,
    Watcher,
    WatchState,
    mount_folder,
    scan,
    settle,
    source_from_metadata,
)
from agesweep.manifest_loading import MAX_MANIFEST_BYTES

BUCKET = "agesweep-test-bucket"
T0 = dt.datetime(2025, 11, 25, 10, 0, tzinfo=dt.UTC)
MANIFEST = b"schema_version: 1\nrun_name: efs\nages: [50]\n"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any, str]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="observer")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        yield s3, sns, topic


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "manifests"
    path.mkdir()
    return path


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def tick(self) -> dt.datetime:
        self.now += dt.timedelta(minutes=1)
        return self.now


def watcher(aws: tuple[Any, Any, str], folder: Path) -> Watcher:
    s3, sns, topic = aws
    return Watcher(s3, sns, bucket=BUCKET, topic_arn=topic, folder="/data/manifests/", mount=folder)


def versions(s3: Any, key: str) -> list[dict[str, Any]]:
    return s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])


def alerts(sns_topic: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="observer")["QueueUrl"]
    messages = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def started(aws: tuple[Any, Any, str], folder: Path, clock: Clock) -> Watcher:
    """A watcher past its first look (the baseline), so files saved from now on are taken."""
    w = watcher(aws, folder)
    assert w.look(clock.tick()).baseline
    return w


# ------------------------------------------------------------------ pure


def test_scan_finds_manifests_in_subfolders_and_skips_the_rest(folder: Path) -> None:
    (folder / "a.yaml").write_bytes(MANIFEST)
    (folder / "team").mkdir()
    (folder / "team" / "b.JSON").write_text("{}")
    (folder / "notes.txt").write_text("x")
    (folder / ".a.yaml.swp").write_text("x")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "c.yaml").write_text("x")
    (folder / "dir.yml").mkdir()
    (folder / "dir.yml" / "inside.yaml").write_text("x")  # a folder named like a manifest is not entered
    os.symlink(folder / "missing.yaml", folder / "dangling.yaml")
    found = scan(folder)
    assert sorted(found) == ["a.yaml", "dangling.yaml", "dir.yml", "team/b.JSON"]
    assert found["a.yaml"].kind == "file" and found["a.yaml"].size == len(MANIFEST)
    assert found["dir.yml"].kind == "directory"
    assert found["dangling.yaml"].kind == "dangling-link"
    assert scan(folder / "missing") == {}


def test_settle_takes_a_file_only_once_it_looks_the_same_twice() -> None:
    look = Look(size=10, mtime_ns=1, inode=7, kind="file")
    first, due, _ = settle(WatchState(), {"m.yaml": look})
    assert due == []
    grown = look.model_copy(update={"size": 20, "mtime_ns": 2})
    second, due, _ = settle(WatchState(looks=first), {"m.yaml": grown})
    assert due == []  # still being written
    third, due, _ = settle(WatchState(looks=second), {"m.yaml": grown})
    assert due == ["m.yaml"]
    done = {"m.yaml": third["m.yaml"].model_copy(update={"taken": "sha256:x"})}
    for _ in range(10):
        done, due, _ = settle(WatchState(looks=done), {"m.yaml": grown})
        assert due == []


def test_settle_first_look_is_a_baseline_renames_keep_their_state_and_deletions_are_forgotten() -> None:
    look = Look(size=10, mtime_ns=1, inode=7, kind="file")
    baseline, due, _ = settle(None, {"old.yaml": look})
    assert due == [] and baseline["old.yaml"].taken == "baseline"
    looks, due, renamed = settle(WatchState(looks=baseline), {"new.yaml": look})
    assert renamed == {"new.yaml": "old.yaml"} and due == [] and looks["new.yaml"].taken == "baseline"
    looks, due, _ = settle(WatchState(looks=looks), {})
    assert looks == {} and due == []


def test_mount_folder_and_source() -> None:
    assert mount_folder("/data/manifests/", "/mnt/data") == Path("/mnt/data/manifests")
    assert source_from_metadata({META_SOURCE: "efs:/data/manifests/caf%C3%A9.yaml"}) == "efs:/data/manifests/café.yaml"
    assert source_from_metadata({}) is None


# ------------------------------------------------------------------ on mock_aws


def test_a_saved_manifest_is_uploaded_once_with_its_origin(aws: tuple[Any, Any, str], folder: Path) -> None:
    s3 = aws[0]
    clock = Clock()
    w = started(aws, folder, clock)
    (folder / "team").mkdir()
    (folder / "team" / "m.yaml").write_bytes(MANIFEST)
    first = w.look(clock.tick())
    assert first.taken == [] and first.settling == ["team/m.yaml"]
    second = w.look(clock.tick())
    assert [t.outcome for t in second.taken] == ["uploaded"]
    head = s3.head_object(Bucket=BUCKET, Key="manifests/efs/team/m.yaml")
    assert head["Metadata"][META_SOURCE] == "efs:/data/manifests/team/m.yaml"
    assert len(head["Metadata"][META_SHA256]) == 64
    assert s3.get_object(Bucket=BUCKET, Key="manifests/efs/team/m.yaml")["Body"].read() == MANIFEST
    state_versions = len(versions(s3, STATE_KEY))
    for _ in range(10):  # ten more looks: nothing read, nothing uploaded, nothing written
        assert w.look(clock.tick()).taken == []
    assert len(versions(s3, "manifests/efs/team/m.yaml")) == 1
    assert len(versions(s3, STATE_KEY)) == state_versions


def test_a_file_being_written_is_not_taken(aws: tuple[Any, Any, str], folder: Path) -> None:
    clock = Clock()
    w = started(aws, folder, clock)
    path = folder / "slow.yaml"
    for i in range(5):
        with path.open("ab") as fh:
            fh.write(b"# line %d\n" % i)
        assert w.look(clock.tick()).taken == []
    assert "Contents" not in aws[0].list_objects_v2(Bucket=BUCKET, Prefix="manifests/")
    assert [t.outcome for t in w.look(clock.tick()).taken] == ["uploaded"]


def test_a_changed_file_is_uploaded_again_and_the_same_content_never_twice(aws: tuple[Any, Any, str], folder: Path) -> None:
    s3 = aws[0]
    clock = Clock()
    w = started(aws, folder, clock)
    path = folder / "m.yaml"
    path.write_bytes(MANIFEST)
    w.look(clock.tick())
    w.look(clock.tick())
    path.write_bytes(MANIFEST + b"# changed\n")
    w.look(clock.tick())
    assert [t.outcome for t in w.look(clock.tick()).taken] == ["uploaded"]
    assert len(versions(s3, "manifests/efs/m.yaml")) == 2
    os.utime(path)  # touched, same bytes: read again, claimed before
    w.look(clock.tick())
    assert [t.outcome for t in w.look(clock.tick()).taken] == ["uploaded_before"]
    assert len(versions(s3, "manifests/efs/m.yaml")) == 2


def test_renames_and_deletions_start_nothing(aws: tuple[Any, Any, str], folder: Path) -> None:
    s3 = aws[0]
    clock = Clock()
    w = started(aws, folder, clock)
    (folder / "a.yaml").write_bytes(MANIFEST)
    w.look(clock.tick())
    w.look(clock.tick())
    (folder / "a.yaml").rename(folder / "b.yaml")
    result = w.look(clock.tick())
    assert result.renamed == {"b.yaml": "a.yaml"} and result.taken == []
    (folder / "b.yaml").unlink()
    for _ in range(3):
        assert w.look(clock.tick()).taken == []
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="manifests/")["Contents"]]
    assert keys == ["manifests/efs/a.yaml"]


def test_state_survives_a_restart_and_the_first_look_is_a_baseline(aws: tuple[Any, Any, str], folder: Path) -> None:
    clock = Clock()
    (folder / "old.yaml").write_bytes(MANIFEST)
    assert watcher(aws, folder).look(clock.tick()).baseline
    (folder / "new.yaml").write_bytes(MANIFEST)
    watcher(aws, folder).look(clock.tick())  # a new watcher (cold start) continues from the bucket
    taken = watcher(aws, folder).look(clock.tick()).taken
    assert [(t.path, t.outcome) for t in taken] == [("new.yaml", "uploaded")]


def test_unusable_files_alert_once_each(aws: tuple[Any, Any, str], folder: Path) -> None:
    clock = Clock()
    w = started(aws, folder, clock)
    os.symlink(folder / "nowhere.yaml", folder / "dangling.yaml")
    (folder / "folder.yaml").mkdir()
    (folder / "big.json").write_bytes(b" " * (MAX_MANIFEST_BYTES + 1))
    w.look(clock.tick())
    outcomes = {t.path: (t.outcome, t.problem) for t in w.look(clock.tick()).taken}
    assert outcomes == {
        "big.json": ("alerted", "oversized"),
        "dangling.yaml": ("alerted", "dangling-link"),
        "folder.yaml": ("alerted", "directory"),
    }
    for _ in range(5):
        assert w.look(clock.tick()).taken == []
    sent = alerts(aws[2])
    assert len(sent) == 3
    by_subject = {m["Subject"]: m["Message"] for m in sent}
    assert "/data/manifests/dangling.yaml" in by_subject["agesweep: manifest on EFS not taken: dangling.yaml"]
    assert "symbolic link" in by_subject["agesweep: manifest on EFS not taken: dangling.yaml"]
    assert "1,048,577 bytes" in by_subject["agesweep: manifest on EFS not taken: big.json"]
    assert "Contents" not in aws[0].list_objects_v2(Bucket=BUCKET, Prefix="manifests/")


def test_two_watchers_with_the_same_state_upload_once(aws: tuple[Any, Any, str], folder: Path) -> None:
    s3 = aws[0]
    clock = Clock()
    started(aws, folder, clock)
    (folder / "m.yaml").write_bytes(MANIFEST)
    watcher(aws, folder).look(clock.tick())
    now = clock.tick()
    state = s3.get_object(Bucket=BUCKET, Key=STATE_KEY)["Body"].read()
    first = watcher(aws, folder).look(now)
    s3.put_object(Bucket=BUCKET, Key=STATE_KEY, Body=state)  # the second one read the state before the first wrote it
    second = watcher(aws, folder).look(now)
    assert [t.outcome for t in first.taken] == ["uploaded"]
    assert [t.outcome for t in second.taken] == ["uploaded_before"]
    assert len(versions(s3, "manifests/efs/m.yaml")) == 1


def test_run_once_takes_over_a_stale_claim_without_doing_it_twice(aws: tuple[Any, Any, str]) -> None:
    s3 = aws[0]
    marker = efs_claims.Marker(BUCKET, "efs-watch/claims/x.json", {"path": "x"})
    calls: list[str] = []

    def act() -> dict[str, Any]:
        calls.append("act")
        return {"n": len(calls)}

    efs_claims.put_json(s3, BUCKET, marker.key, {"status": "claimed", "claimed_at": T0.isoformat()})  # a watcher died
    soon = T0 + dt.timedelta(seconds=60)
    assert efs_claims.run_once(s3, marker, act, now=soon, stale_after_s=900) == ("in_progress", None)
    late = T0 + dt.timedelta(seconds=1000)
    assert efs_claims.run_once(s3, marker, act, now=late, stale_after_s=900, already_done=lambda: {"n": 0}) == ("before", {"n": 0})
    assert calls == []
    other = efs_claims.Marker(BUCKET, "efs-watch/claims/y.json", {"path": "y"})
    efs_claims.put_json(s3, BUCKET, other.key, {"status": "claimed", "claimed_at": T0.isoformat()})
    assert efs_claims.run_once(s3, other, act, now=late, stale_after_s=900, already_done=lambda: None) == ("now", {"n": 1})
    assert efs_claims.run_once(s3, other, act, now=late, stale_after_s=900) == ("before", {"n": 1})
    assert calls == ["act"]
