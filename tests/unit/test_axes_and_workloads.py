"""Named axes, points and your own job: the four example manifests of issue 11 validate and plan,
every job's command is fully resolved by its parameters, and outputs never collide."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from agesweep.axes import DateWindows, NumberRange, axis_values, number_label, points
from agesweep.errors import ManifestInvalid
from agesweep.manifest import parse_manifest
from agesweep.plan import validate_and_plan
from agesweep.settings import Settings
from agesweep.workload import credential_problem, refs_in

EXAMPLES = Path(__file__).parents[2] / "events" / "manifests"
STACK = Settings(
    bucket_name="agesweep-stack", job_definition="arn:aws:batch:us-east-1:123456789012:job-definition/agesweep-job:1",
    allowed_buckets=frozenset({"pulse-data", "pulse-results", "triage-results", "triage-experiments"}),
    allowed_secrets=frozenset({"arn:aws:secretsmanager:us-east-1:123456789012:secret:triage/*"}),
    job_role_arn="arn:aws:iam::123456789012:role/job", job_execution_role_arn="arn:aws:iam::123456789012:role/exec",
    efs_file_system_id="fs-0123456789abcdef0", efs_access_point_id="fsap-0123456789abcdef0",
)


def test_number_labels_are_short_and_exact() -> None:
    assert [number_label(v) for v in NumberRange.model_validate({"from": 0.1, "to": 0.3, "step": 0.1}).values()] == [
        "0.1", "0.2", "0.3"]
    assert number_label(3) == "3" and number_label(2.0) == "2" and number_label(0.005) == "0.005"


def test_date_windows_cover_the_range_and_clip_the_last() -> None:
    windows = DateWindows.model_validate({"start": "2023-01-01", "end": "2023-03-01", "days": 30}).windows()
    assert windows == [(date(2023, 1, 1), date(2023, 1, 30)), (date(2023, 1, 31), date(2023, 3, 1))]
    values = axis_values("window", DateWindows.model_validate({"start": date(2023, 1, 1), "end": date(2023, 1, 1)}))
    assert values[0].parameters == (("window_start", "2023-01-01"), ("window_end", "2023-01-01"))


def test_product_varies_the_last_axis_fastest_and_zip_pairs_by_position() -> None:
    a, b = axis_values("a", [1, 2]), axis_values("b", ["x", "y"])
    assert [(p[0].label, p[1].label) for p in points([a, b], "product")] == [("1", "x"), ("1", "y"), ("2", "x"), ("2", "y")]
    assert [(p[0].label, p[1].label) for p in points([a, b], "zip")] == [("1", "x"), ("2", "y")]


@pytest.mark.parametrize(("name", "value"), [("DB_URL", "postgresql://user:password@host/db"), ("POSTGRES_PASSWORD", "x"),
                                             ("API_TOKEN", "x"), ("X", "AKIAIOSFODNN7EXAMPLE")])
def test_credentials_in_plain_environment_are_named(name: str, value: str) -> None:
    assert "secrets" in (credential_problem(name, value) or "")


@pytest.mark.parametrize(("name", "value"), [("DATA_BUCKET", "pulse-data"), ("POSTGRES_HOST", "db.example.com"),
                                             ("URL", "https://example.com/a@b")])
def test_plain_settings_are_not_credentials(name: str, value: str) -> None:
    assert credential_problem(name, value) is None


def _resolved(command: list[str], parameters: dict[str, str]) -> list[str]:
    """What Batch runs: each Ref::name replaced by the job's parameter."""
    out = []
    for part in command:
        for ref in refs_in([part]):
            part = part.replace(f"Ref::{ref}", parameters[ref])
        out.append(part)
    return out


@pytest.mark.parametrize(("file", "points_expected"), [
    ("pulse-retrodiction.yaml", 4 * 13), ("triage-experiments.yaml", 3), ("sen2cor-scenes.yaml", 3),
])
def test_own_workload_examples_plan_one_job_per_point(file: str, points_expected: int) -> None:
    raw = (EXAMPLES / file).read_bytes()
    plan = validate_and_plan(raw, file, STACK, run_id="example-0123456789ab")
    assert plan.workload == "container" and plan.register_job_definition
    assert len(plan.items) == plan.totals.points == points_expected
    request = plan.job_definition_request
    assert request is not None
    command = request["ContainerProperties"]["Command"]
    for item in plan.items:
        resolved = _resolved(command, {**request["Parameters"], **item.parameters})
        assert not refs_in(resolved), f"{item.job_name}: unresolved {resolved}"
        assert item.parameters["output_folder"] == item.output_folder in resolved
        assert len(item.job_name) <= 128 and all(f"agesweep:{axis}" in item.tags for axis in plan.axes)
    assert len({i.job_name for i in plan.items}) == len({i.output_folder for i in plan.items}) == len(plan.items)
    assert request["ContainerProperties"]["JobRoleArn"] == STACK.job_role_arn


def test_triage_password_is_a_secret_and_sen2cor_mounts_efs() -> None:
    triage = validate_and_plan((EXAMPLES / "triage-experiments.yaml").read_bytes(), "t.yaml", STACK, run_id="t-1")
    container = (triage.job_definition_request or {})["ContainerProperties"]
    assert [s["Name"] for s in container["Secrets"]] == ["POSTGRES_PASSWORD"]
    assert "POSTGRES_PASSWORD" not in {e["Name"] for e in container["Environment"]}
    assert "Volumes" not in container
    sen2cor = validate_and_plan((EXAMPLES / "sen2cor-scenes.yaml").read_bytes(), "s.yaml", STACK, run_id="s-1")
    mounted = (sen2cor.job_definition_request or {})["ContainerProperties"]
    assert mounted["MountPoints"] == [{"SourceVolume": "data", "ContainerPath": "/data", "ReadOnly": False}]
    assert mounted["Volumes"][0]["EfsVolumeConfiguration"]["AuthorizationConfig"]["AccessPointId"] == STACK.efs_access_point_id


def test_trainer_hyperparameter_sweep_gives_each_point_its_own_folders() -> None:
    raw = (EXAMPLES / "trainer-hyperparameters.yaml").read_bytes()
    plan = validate_and_plan(raw, "trainer-hyperparameters.yaml", STACK, run_id="hp-0123456789ab")
    assert plan.workload == "trainer" and not plan.register_job_definition
    assert len(plan.items) == 8 and plan.axes == ["learning_rate", "seed"]
    folders = {i.output_folder for i in plan.items}
    prefixes = {(i.parameters["results_uri"], i.age) for i in plan.items}
    assert len(folders) == len(prefixes) == 8
    first = plan.items[0]
    assert first.point == {"learning_rate": "0.002", "seed": "1"} and first.age == 55
    assert first.parameters["learning_rate"] == "0.002" and first.parameters["seed"] == "1"
    assert first.output_folder == "/data/output/learning_rate=0.002/seed=1/hp-0123456789ab/age_55/"


def test_a_v1_manifest_plans_exactly_as_before() -> None:
    plan = validate_and_plan((EXAMPLES / "demo.yaml").read_bytes(), "demo.yaml", Settings(), run_id="demo-1")
    assert plan.axes == [] and all(i.point == {} for i in plan.items)
    assert plan.items[0].job_name == "demo-0-2000-age-40"
    assert plan.items[0].parameters["output"] == "/data/output" and plan.items[0].output_folder == "/data/output/demo-1/age_40/"


def test_manifest_names_its_workload() -> None:
    assert parse_manifest((EXAMPLES / "demo.yaml").read_bytes(), "demo.yaml").workload == "trainer"
    assert parse_manifest((EXAMPLES / "sen2cor-scenes.yaml").read_bytes(), "s.yaml").workload == "container"
    assert parse_manifest(b"axes: {f: [a]}\njob: {definition: triage-cli-experiment}\n", "t.yaml").workload == "definition"


FIXTURES = Path(__file__).parent / "fixtures"


def test_a_plan_too_big_for_the_state_runs_as_a_distributed_map() -> None:
    """40 ages x 8 irregular slices (320 jobs) was over the inline payload budget; now its items go to S3."""
    raw = (FIXTURES / "irregular_slices_320_jobs.yaml").read_bytes()
    plan = validate_and_plan(raw, "irregular.yaml", STACK, run_id="irr-0123456789ab")
    assert plan.map_mode == "DISTRIBUTED" and plan.items_key == "runs/irr-0123456789ab/plan-items.json"
    assert len(plan.items) == 320 and plan.to_state()["items"] == []
    assert plan.totals.payload_bytes is not None and plan.totals.payload_bytes < 16 * 1024
    assert plan.totals.history_events < 100  # the iterations' events are in their child executions
    items = json.loads(plan.items_json())
    assert plan.model_copy(update={"items": []}).with_items_json(plan.items_json()).items == plan.items  # read back
    assert [i["job_name"] for i in items] == [i.job_name for i in plan.items]
    assert items[0]["container_overrides"] == {} and "OnReason" not in items[0]["retry_strategy"]["EvaluateOnExit"][0]


def test_small_plans_stay_inline_and_big_ones_stop_at_the_item_limit() -> None:
    small = validate_and_plan((EXAMPLES / "demo.yaml").read_bytes(), "demo.yaml", STACK, run_id="demo-1")
    assert small.map_mode == "INLINE" and small.items_key is None and len(small.to_state()["items"]) == 40
    command = "{container: {image: 'x/y:v1', command: [run, Ref::a, Ref::b]}}"
    two_thousand = f"axes: {{a: {{from: 1, to: 40}}, b: {{from: 1, to: 50}}}}\njob: {command}\n".encode()
    assert len(validate_and_plan(two_thousand, "big.yaml", STACK, run_id="big-1").items) == 2000
    over = f"axes: {{a: {{from: 1, to: 101}}, b: {{from: 1, to: 100}}}}\njob: {command}\n".encode()
    with pytest.raises(ManifestInvalid) as caught:
        validate_and_plan(over, "over.yaml", STACK, run_id="over-1")
    assert caught.value.problems == [
        "axes: 10,100 points is too many (at most 10,000 per run: split the sweep into several manifests, "
        "or zip axes instead of combining every value)"
    ]


def test_local_mode_makes_trainer_inputs_only_for_the_trainer(tmp_path: Path) -> None:
    from agesweep.cli.local import runs_the_trainer

    broken = tmp_path / "broken.yaml"
    broken.write_text("ages: [")
    assert runs_the_trainer(EXAMPLES / "demo.yaml") and runs_the_trainer(EXAMPLES / "trainer-hyperparameters.yaml")
    assert not runs_the_trainer(EXAMPLES / "sen2cor-scenes.yaml")
    assert runs_the_trainer(broken) and runs_the_trainer(None)  # the run reports the problems


def test_a_runs_lineage_keeps_the_parameters_every_point_shares() -> None:
    from agesweep.collation.lineage import shared_parameters

    plan = validate_and_plan((EXAMPLES / "trainer-hyperparameters.yaml").read_bytes(), "t.yaml", STACK, run_id="hp-1")
    shared = shared_parameters(plan)
    assert shared["epochs"] == "20" and shared["run_id"] == "hp-1" and shared["input"] == "/data/input"
    assert not {"learning_rate", "seed", "output", "results_uri", "age"} & set(shared)  # they vary per point / age
