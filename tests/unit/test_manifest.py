"""The manifest model: what valid manifests mean, defaults, loading, schema and error wording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from agesweep.errors import ManifestInvalid
from agesweep.manifest import (
    AgeRange,
    Manifest,
    SliceGrid,
    load_manifest,
    manifest_json_schema,
    parse_manifest,
    run_name_from_source,
)
from agesweep.manifest_errors import did_you_mean
from agesweep.manifest_loading import load_data
from agesweep.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "events" / "manifests"
MINIMAL = b"ages: [40]\nslices: [{start_index: 0, end_index: 100}]\n"


def test_seed_sweep_manifest() -> None:
    m = load_manifest(str(MANIFESTS / "aladyn-0-10000.yaml"))
    assert m.run_name == "aladyn-0-10000"
    assert m.age_values() == list(range(40, 80))
    assert m.slice_bounds() == [(0, 10000)]
    assert (m.job.vcpus, m.job.memory_mib, m.job.timeout_minutes, m.job.attempts) == (2, 3840, 240, 3)
    assert m.training.as_parameters() == {"epochs": "200", "learning_rate": "0.1", "seed": "42"}
    assert m.tags == {"slice": "0-10k", "project": "aladyn"}


def test_demo_manifest_defaults() -> None:
    m = load_manifest(str(MANIFESTS / "demo.yaml"))
    assert m.run_name is None and m.effective_run_name("demo.yaml") == "demo"
    assert m.age_values() == list(range(40, 80)) and m.slice_bounds() == [(0, 2000)]
    assert (m.input, m.output, m.max_concurrency, m.tolerated_failure_percent) == ("/data/input", "/data/output", 40, 0.0)


def test_retries_is_spelled_attempts() -> None:
    raw = (MANIFESTS / "aladyn-0-10000.yaml").read_bytes().replace(b"attempts:", b"retries:")
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(raw, "aladyn-0-10000.yaml")
    assert caught.value.problems == [
        "job.retries: unknown field 'retries' (did you mean 'attempts'? allowed: definition, queue, image, "
        "vcpus, memory_mib, gpus, timeout_minutes, attempts, spot_reclaims_before_on_demand, container, parameters)"
    ]


def test_json_and_yaml_give_the_same_model() -> None:
    data = {"ages": {"from": 40, "to": 45, "step": 5}, "slices": {"size": 100, "total": 250}, "tags": {"n": 1}}
    from_json = parse_manifest(json.dumps(data).encode(), "x.json")
    from_yaml = parse_manifest(b"ages: {from: 40, to: 45, step: 5}\nslices: {size: 100, total: 250}\ntags: {n: 1}\n", "x.yaml")
    assert from_json == from_yaml
    assert from_json.age_values() == [40, 45]
    assert from_json.slice_bounds() == [(0, 100), (100, 200), (200, 250)]
    assert from_json.tags == {"n": "1"}


def test_utf8_bom_and_list_ages_are_accepted_and_sorted() -> None:
    m = parse_manifest(b"\xef\xbb\xbfages: [55, 41]\nslices: [{start_index: 0, end_index: 10}]\n", "bom.yaml")
    assert m.age_values() == [41, 55]


def test_slice_grid_with_offset() -> None:
    grid = SliceGrid(size=300, total=1000, start_index=5000)
    assert grid.end_index == 6000
    assert grid.slices()[0] == (5000, 5300) and grid.slices()[-1] == (5900, 6000) and len(grid.slices()) == 4


def test_paths_are_normalised() -> None:
    m = parse_manifest(MINIMAL + b"input: /data//in/\noutput: s3://b-u-c/out/\n", "p.yaml")
    assert (m.input, m.output) == ("/data/in", "s3://b-u-c/out")


def test_stack_bounds_and_buckets_come_from_the_stack() -> None:
    stack = Settings(age_min=30, age_max=90, bucket_name="stack-bucket", allowed_buckets=frozenset({"inputs-x"}))
    raw = b"ages: {from: 30, to: 90}\nslices: [{start_index: 0, end_index: 10}]\ninput: s3://inputs-x/a\noutput: s3://stack-bucket/o\n"
    assert len(parse_manifest(raw, "s.yaml", stack).age_values()) == 61
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(raw, "s.yaml")  # default stack: 40..79, no bucket configured (s3 unchecked)
    assert caught.value.problems == ["ages: 30, 31, 32, 33, 34, … outside the allowed ages (40..79)"]


def test_stack_config_from_env() -> None:
    stack = Settings.from_env(
        {"BUCKET_NAME": "b1", "JOB_QUEUE_ARN": "q", "JOB_DEFINITION_ARN": "d:3", "AGE_MIN": "45", "AGE_MAX": "50",
         "ALLOWED_BUCKETS": " in-1, in-2 ,"}
    )
    assert stack.buckets == {"b1", "in-1", "in-2"} and (stack.age_min, stack.age_max) == (45, 50)
    assert stack.results_uri("r-1") == "s3://b1/runs/r-1/"
    assert not stack.s3_unrestricted and Settings.from_env({}).s3_unrestricted


def test_run_name_from_source() -> None:
    assert run_name_from_source("manifests/aladyn 0-10000.v2.yaml") == "aladyn-0-10000-v2"
    assert run_name_from_source("C:\\x\\__.yaml") == "run"
    assert run_name_from_source("a" * 100 + ".yaml") == "a" * 64


def test_did_you_mean() -> None:
    allowed = ["vcpus", "memory_mib", "attempts", "timeout_minutes"]
    assert did_you_mean("vcpu", allowed) == "vcpus"
    assert did_you_mean("Memory-MiB", allowed) == "memory_mib"
    assert did_you_mean("retries", allowed) == "attempts"
    assert did_you_mean("colour", allowed) is None


def test_load_data_rejects_yaml_that_is_fine_json_wise() -> None:
    # YAML anchors are rejected even when harmless: the loader never expands them.
    with pytest.raises(ManifestInvalid):
        load_data(b"a: &x 1\nb: *x\n")
    assert load_data(b"a: &x 1\n") == {"a": 1}


def test_models_are_strict_and_frozen() -> None:
    m = parse_manifest(MINIMAL, "m.yaml")
    with pytest.raises(ValidationError, match="frozen"):
        m.max_concurrency = 3  # type: ignore[misc]
    assert isinstance(parse_manifest(b"ages: {from: 40, to: 41}\nslices: {size: 1, total: 2}\n", "r.yaml").ages, AgeRange)


def test_json_schema_describes_every_field() -> None:
    schema = manifest_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["properties"]) == {f.alias or n for n, f in Manifest.model_fields.items()}
    assert "required" not in schema  # which fields depend on the workload:
    assert schema["anyOf"] == [{"required": ["ages", "slices"]}, {"required": ["axes", "job"]}]
    assert schema["additionalProperties"] is False
    assert "from" in schema["$defs"]["AgeRange"]["properties"]
    for name, definition in schema["$defs"].items():
        for prop, body in definition.get("properties", {}).items():
            assert body.get("description"), f"{name}.{prop} has no description"
    assert all(body.get("description") for body in schema["properties"].values())
