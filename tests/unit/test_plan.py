"""Planning: the plan dict the state machine consumes (docs/internals.md), naming, arrays, limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agesweep.contracts import JobDefinitionRef, JobTimeout, PlanItem, RetryStrategy
from agesweep.errors import ManifestInvalid
from agesweep.local.template import load_template
from agesweep.manifest import parse_manifest
from agesweep.plan import (
    EVALUATE_ON_EXIT,
    JOB_NAME_MAX,
    PAYLOAD_BUDGET,
    array_layout,
    job_definition_request,
    job_name,
    plan,
    safe_job_name,
    validate_and_plan,
)
from agesweep.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
STACK = Settings(
    bucket_name="agesweep-dev-bucket",
    job_queue="arn:aws:batch:us-east-1:123456789012:job-queue/agesweep-queue",
    job_definition="arn:aws:batch:us-east-1:123456789012:job-definition/agesweep-job:7",
)
RUN_ID = "aladyn-0-10000-778b1c523b55"
# Keys statemachine/sweep.asl.json reads: they must exist with these names and types.
ASL_PLAN_KEYS = {"items", "max_concurrency", "job_queue", "job_definition", "register_job_definition", "job_definition_request"}
ASL_ITEM_KEYS = {"job_name", "array_size", "parameters", "container_overrides", "timeout", "retry_strategy", "tags", "age"}


def _plan(text: str, name: str = "m.yaml", stack: Settings = STACK, run_id: str = RUN_ID) -> dict:
    return validate_and_plan(text.encode(), name, stack, run_id).to_state()


@pytest.fixture(scope="module")
def seed_plan() -> dict:
    raw = (ROOT / "events" / "manifests" / "aladyn-0-10000.yaml").read_bytes()
    location = {"bucket": "agesweep-dev-bucket", "key": "manifests/aladyn-0-10000.yaml", "version_id": "v1"}
    return validate_and_plan(raw, "manifests/aladyn-0-10000.yaml", STACK, RUN_ID, location).to_state()


def test_seed_sweep_is_40_jobs_named_like_the_seed(seed_plan: dict) -> None:
    names = [i["job_name"] for i in seed_plan["items"]]
    assert names == [f"aladyn-0-10000-age-{age}" for age in range(40, 80)]
    assert seed_plan["totals"]["jobs"] == 40 and seed_plan["totals"]["array_jobs"] == 0


def test_plan_has_the_keys_the_state_machine_reads(seed_plan: dict) -> None:
    assert ASL_PLAN_KEYS <= set(seed_plan)
    assert seed_plan["job_queue"] == STACK.job_queue
    assert seed_plan["job_definition"] == {"ref": STACK.job_definition}
    assert seed_plan["register_job_definition"] is False and seed_plan["job_definition_request"] is None
    assert isinstance(seed_plan["max_concurrency"], int)
    for item in seed_plan["items"]:
        assert ASL_ITEM_KEYS <= set(item)
        assert isinstance(item["array_size"], int) and isinstance(item["age"], int)
    assert json.loads(json.dumps(seed_plan)) == seed_plan  # plain JSON, nothing pydantic left


def test_item_matches_the_internals_example(seed_plan: dict) -> None:
    item = next(i for i in seed_plan["items"] if i["age"] == 55)
    assert item["parameters"] == {
        "start_index": "0", "end_index": "10000", "slice_size": "0", "age": "55", "run_id": RUN_ID,
        "input": "/data/input", "output": "/data/output",
        "results_uri": f"s3://agesweep-dev-bucket/runs/{RUN_ID}/",
        "epochs": "200", "learning_rate": "0.1", "seed": "42",
    }
    assert item["container_overrides"] == {
        "ResourceRequirements": [{"Type": "VCPU", "Value": "2"}, {"Type": "MEMORY", "Value": "3840"}],
        "Environment": [{"Name": "OMP_NUM_THREADS", "Value": "2"}],
    }
    assert item["timeout"] == {"AttemptDurationSeconds": 14400}
    # spot-first: the manifest's reclaims before on-demand (default 2); on-demand: the stack's attempts
    assert item["retry_strategy"] == {"Attempts": 2, "EvaluateOnExit": [e.model_dump() for e in EVALUATE_ON_EXIT]}
    assert item["on_demand_retry_strategy"] == {"Attempts": 3, "EvaluateOnExit": [e.model_dump() for e in EVALUATE_ON_EXIT]}
    assert item["retry_strategy"]["EvaluateOnExit"][-1] == {"OnReason": "*", "Action": "EXIT"}
    assert item["slices"] == [[0, 10000]] and item["output_folder"] == f"/data/output/{RUN_ID}/age_55/"
    assert item["tags"]["agesweep:run_id"] == RUN_ID and item["tags"]["agesweep:age"] == "55"
    assert item["tags"]["agesweep:slice"] == "0-10000" and len(item["tags"]["agesweep:manifest_sha256"]) == 64
    assert seed_plan["manifest"]["key"] == "manifests/aladyn-0-10000.yaml" and seed_plan["manifest"]["version_id"] == "v1"


def test_totals_and_estimates(seed_plan: dict) -> None:
    totals = seed_plan["totals"]
    assert totals["child_jobs"] == 40 and totals["history_limit"] == 25_000
    assert totals["state_transitions"] == 8 + 3 * 40 and totals["history_events"] == 29 + 12 * 40
    cost = totals["cost_estimate_usd"]
    assert cost["vcpu_hours_at_timeout"] == 40 * 4 * 2
    assert cost["compute_on_demand_at_timeout"] == pytest.approx(320 * 0.048)
    assert cost["step_functions"] == pytest.approx(127 * 0.025 / 1000, abs=1e-4)
    assert "Estimate" in totals["estimate_note"] and cost["prices"]["as_of"]
    # Expected: 40 jobs x (30 s + 200 epochs x 0.93 s at the seed's shape on 2 vCPUs) = 2.4 job-hours.
    assert cost["job_hours_expected"] == pytest.approx(40 * (30 + 200 * 0.93) / 3600, rel=1e-3)
    assert cost["vcpu_hours_expected"] == pytest.approx(2 * cost["job_hours_expected"], rel=1e-3)
    assert cost["compute_spot_expected"] == pytest.approx(cost["vcpu_hours_expected"] * 0.0168, rel=1e-2)
    assert cost["compute_spot_expected"] < cost["compute_spot_at_timeout"] / 40
    assert seed_plan["stack_resources"] == {"vcpus": 2.0, "memory_mib": 3840, "gpus": 0}
    assert 0 < totals["payload_bytes"] < PAYLOAD_BUDGET


def test_defaults_come_from_the_stack_and_training_params_are_optional() -> None:
    p = _plan("ages: [40]\nslices: [{start_index: 0, end_index: 10}]\n", "defaults.yaml")
    item = p["items"][0]
    assert item["container_overrides"] == {}
    assert item["timeout"] == {"AttemptDurationSeconds": 240 * 60} and item["on_demand_retry_strategy"]["Attempts"] == 3
    assert "epochs" not in item["parameters"]  # the job definition's default applies
    assert item["job_name"] == "defaults-0-10-age-40" and p["run_name"] == "defaults"


def test_a_retry_passes_the_run_it_retries_and_keep_checkpoints_to_every_job() -> None:
    """Issue item 15: the retried run reaches the trainer as --resume_from (Ref::resume_from);
    without one the job definition's defaults ("none", keep_checkpoint "false") apply."""
    plain = _plan("ages: [40]\nslices: [{start_index: 0, end_index: 10}]\n")["items"][0]["parameters"]
    assert "resume_from" not in plain and "keep_checkpoint" not in plain
    retry = _plan(
        "ages: [40, 41]\nslices: [{start_index: 0, end_index: 10}]\nresume_from: demo-0123456789ab\n"
        "training: {keep_checkpoints: true}\n"
    )
    for item in retry["items"]:
        assert item["parameters"]["resume_from"] == "demo-0123456789ab"
        assert item["parameters"]["keep_checkpoint"] == "true"
    template = load_template(ROOT / "template.yaml")
    definition = template["Resources"]["JobDefinition"]["Properties"]
    command = definition["ContainerProperties"]["Command"]
    assert command[command.index("--resume_from") + 1] == "Ref::resume_from" and definition["Parameters"]["resume_from"] == "none"
    assert command[command.index("--keep_checkpoint") + 1] == "Ref::keep_checkpoint"
    assert definition["Parameters"]["keep_checkpoint"] == "false"


def test_equal_contiguous_slices_become_one_array_job_per_age() -> None:
    p = _plan("run_name: grid\nages: [40, 41]\nslices: {size: 1000, total: 10500}\njob: {gpus: 1}\n")
    assert [i["job_name"] for i in p["items"]] == ["grid-0-10500-age-40", "grid-0-10500-age-41"]
    item = p["items"][0]
    assert item["array_size"] == 11 and item["slice_size"] == 1000 and item["slices"] is None
    assert (item["parameters"]["start_index"], item["parameters"]["end_index"], item["parameters"]["slice_size"]) == ("0", "10500", "1000")
    expanded = PlanItem.model_validate(item).slice_spans()
    assert expanded[0] == (0, 1000) and expanded[10] == (10000, 10500) and len(expanded) == 11
    assert item["tags"]["agesweep:slice"] == "0-10500/1000"
    assert {"Type": "GPU", "Value": "1"} in item["container_overrides"]["ResourceRequirements"]
    assert p["totals"]["array_jobs"] == 2 and p["totals"]["child_jobs"] == 22


def test_explicit_contiguous_list_is_also_an_array() -> None:
    text = (
        "ages: [40]\nslices:\n  - {start_index: 0, end_index: 50}\n  - {start_index: 50, end_index: 100}\n"
        "  - {start_index: 100, end_index: 120}\n"
    )
    item = _plan(text, "list.yaml")["items"][0]
    assert (item["array_size"], item["slice_size"], item["job_name"]) == (3, 50, "list-0-120-age-40")


def test_irregular_slices_become_one_job_per_age_and_slice() -> None:
    text = "ages: [40, 41]\nslices:\n  - {start_index: 0, end_index: 50}\n  - {start_index: 60, end_index: 100}\n"
    p = _plan(text, "gaps.yaml")
    assert [i["job_name"] for i in p["items"]] == [
        "gaps-0-50-age-40", "gaps-60-100-age-40", "gaps-0-50-age-41", "gaps-60-100-age-41"]
    assert all(i["array_size"] == 0 for i in p["items"]) and p["items"][1]["slices"] == [[60, 100]]


@pytest.mark.parametrize(
    ("bounds", "grid", "expected"),
    [
        ([(0, 10)], False, None),
        ([(0, 10), (10, 20), (20, 25)], False, 10),
        ([(0, 10), (10, 15), (15, 25)], False, None),  # unequal middle
        ([(0, 10), (11, 20)], False, None),  # gap
        ([(0, 10), (10, 30)], False, None),  # last longer than the size
        ([(0, 7), (7, 14)], True, 7),
    ],
)
def test_array_layout(bounds: list[tuple[int, int]], grid: bool, expected: int | None) -> None:
    assert array_layout(bounds, grid) == expected


def test_job_names() -> None:
    assert job_name("aladyn", 0, 10000, 55) == "aladyn-0-10000-age-55"
    assert job_name("aladyn-0-10000", 0, 10000, 55) == "aladyn-0-10000-age-55"
    assert job_name("aladyn-0-10000", 0, 5000, 55) == "aladyn-0-10000-0-5000-age-55"
    long_a = safe_job_name("x" * 200 + "-age-40")
    long_b = safe_job_name("x" * 199 + "y-age-40")
    assert len(long_a) == JOB_NAME_MAX and long_a.endswith("-age-40") and long_a != long_b
    assert safe_job_name("x" * 200 + "-age-40") == long_a  # deterministic
    assert safe_job_name("_a.b") == "j_a-b"


def test_max_concurrency_above_inline_map_limit_is_a_warning() -> None:
    p = _plan("ages: [40]\nslices: [{start_index: 0, end_index: 10}]\nmax_concurrency: 100\n")
    assert p["max_concurrency"] == 100 and p["warnings"][0].startswith("max_concurrency: 100 is above 40")


def test_image_override_registers_a_derived_job_definition() -> None:
    description = {
        "jobDefinitionName": "agesweep-job", "jobDefinitionArn": STACK.job_definition, "revision": 7,
        "status": "ACTIVE", "type": "container", "parameters": {"epochs": "200", "slice_size": "0"},
        "containerProperties": {
            "image": "old:1", "command": ["python", "-m", "training.train", "--epochs", "Ref::epochs"],
            "resourceRequirements": [{"type": "VCPU", "value": "32"}],
            "environment": [{"name": "AGESWEEP_X", "value": "1"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-stream-prefix": "p"}},
            "volumes": [{"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "transitEncryption": "ENABLED"}}],
        },
        "retryStrategy": {"attempts": 1}, "timeout": {"attemptDurationSeconds": 60}, "tags": {"team": "ml"},
        "platformCapabilities": ["EC2"], "containerOrchestrationType": "ECS",
    }
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/aladyn:v2"
    manifest = parse_manifest(f"run_name: r1\nages: [40]\nslices: [{{start_index: 0, end_index: 1}}]\njob: {{image: '{image}'}}\n".encode())
    p = plan(manifest, STACK, "r1-0123456789ab", manifest_sha256="ab" * 32, job_definition_description=description)
    assert p.register_job_definition is True and p.job_definition == JobDefinitionRef(ref=STACK.job_definition)
    req = p.job_definition_request
    assert req is not None
    assert {"JobDefinitionName", "Type", "ContainerProperties", "Parameters", "RetryStrategy", "Timeout", "Tags"} <= set(req)
    assert req["JobDefinitionName"] == "agesweep-job-r1" and req["Type"] == "container"
    props = req["ContainerProperties"]
    assert props["Image"] == image and props["Command"][-1] == "Ref::epochs"
    assert props["ResourceRequirements"] == [{"Type": "VCPU", "Value": "32"}]
    assert props["Environment"] == [{"Name": "AGESWEEP_X", "Value": "1"}]
    assert props["LogConfiguration"]["Options"] == {"awslogs-group": "g", "awslogs-stream-prefix": "p"}  # map keys kept
    assert props["Volumes"][0]["EfsVolumeConfiguration"]["TransitEncryption"] == "ENABLED"
    assert req["Parameters"] == {"epochs": "200", "slice_size": "0"}
    assert req["RetryStrategy"]["Attempts"] == 3 and req["Timeout"] == {"AttemptDurationSeconds": 14400}
    assert req["Tags"]["team"] == "ml" and req["Tags"]["agesweep:run_id"] == "r1-0123456789ab"
    assert "ContainerOrchestrationType" not in req and "Revision" not in req and "Status" not in req


def test_offline_image_override_still_gives_a_complete_request() -> None:
    image = b"repo/x@sha256:" + b"a" * 64
    manifest = parse_manifest(b"ages: [40]\nslices: [{start_index: 0, end_index: 1}]\njob: {image: '" + image + b"'}\n", "o.yaml")
    timeout, retry = JobTimeout(AttemptDurationSeconds=60), RetryStrategy(Attempts=1, EvaluateOnExit=[])
    req = job_definition_request(manifest, "agesweep-job:1", "o", "o-1", "", timeout, retry, None)
    assert {"JobDefinitionName", "Type", "ContainerProperties", "Parameters", "RetryStrategy", "Timeout", "Tags"} <= set(req)
    assert req["ContainerProperties"] == {"Image": "repo/x@sha256:" + "a" * 64}


def test_bad_run_id_is_a_problem() -> None:
    with pytest.raises(ManifestInvalid) as caught:
        _plan("ages: [40]\nslices: [{start_index: 0, end_index: 10}]\n", run_id="x" * 81)
    assert caught.value.problems[0].startswith("run_id: ")


def test_payload_stays_under_budget_for_the_largest_array_plan() -> None:
    # 46 user tags (+4 of agesweep = the Batch maximum of 50) using the whole tag budget, 10,000 slices per age
    tags = ", ".join(f"k{i:02d}: {'v' * 18}" for i in range(46))
    p = _plan("ages: {from: 40, to: 79}\nslices: {size: 1, total: 10000}\ntags: {" + tags + "}\n")
    assert p["totals"]["child_jobs"] == 400_000 and p["totals"]["jobs"] == 40
    assert all(len(i["tags"]) == 50 for i in p["items"])
    assert p["totals"]["payload_bytes"] < PAYLOAD_BUDGET
