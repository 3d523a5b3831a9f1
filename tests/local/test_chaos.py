"""Chaos in local mode: seeded random reclaims and hard kills of Batch attempts. Every item still
completes, with outputs bit-identical to a clean run of the same manifest, and a hard kill loses
at most one checkpoint interval of training."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import torch
from typer.testing import CliRunner

from agesweep.cli import app
from agesweep.exit_codes import ExitCode
from agesweep.local.cloud import Chaos, SpotInterruption
from agesweep.local.session import run_manifest
from agesweep.plan import job_name
from tests.local.conftest import write_manifest
from training import layout

AGES = [50, 51, 52]
CHECKPOINT_EVERY = 20  # training.train's default; the job definition does not pass --checkpoint_every
WITHIN_S = 5.0  # chaos strikes 0.2..5 s into an attempt, which runs for longer (4000 epochs)


def _hits(chaos: Chaos, ages: list[int]) -> dict[int, list[tuple[float, bool] | None]]:
    """Per age: the draw of spot attempts 1 and 2 and of the on-demand attempt 1."""
    hits = {}
    for age in ages:
        job = SimpleNamespace(job_name=job_name("chaos", 0, 240, age), array_properties=None)
        hits[age] = [chaos.draw(job, 1, True), chaos.draw(job, 2, True), chaos.draw(job, 1, False)]
    return hits


def _seed_with_one_kill_and_one_reclaim() -> Chaos:
    """A seed whose first attempts lose one host without warning and one with a warning, and no
    item more than once (so each is simply retried once on the spot queue)."""
    for seed in range(10_000):
        chaos = Chaos(reclaim_share=0.3, kill_share=0.3, seed=seed, within_s=WITHIN_S)
        hits = _hits(chaos, AGES)
        if any(later is not None for first, *rest in hits.values() for later in rest):
            continue
        firsts = [first for first, *_ in hits.values()]
        kills = [hit for hit in firsts if hit is not None and hit[1] and hit[0] > WITHIN_S / 2]
        reclaims = [hit for hit in firsts if hit is not None and not hit[1]]
        if len(kills) == 1 and len(reclaims) == 1:
            return chaos
    raise AssertionError("no suitable seed")


def _outputs(data_dir: Path, run_id: str, age: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    folder = layout.job_dir(data_dir / "output", run_id, age)
    pi = torch.load(folder / layout.pi_name(age, 0, 240), weights_only=False)
    model = torch.load(folder / layout.model_name(age, 0, 240), weights_only=False)["model_state_dict"]
    return pi, model


def test_chaos_reclaims_and_kills_change_nothing_but_the_attempts(make_stack, data_dir: Path, tmp_path: Path) -> None:
    stack = make_stack()
    manifest = write_manifest(tmp_path / "chaos.yaml", AGES, run_name="chaos", epochs=4000)
    clean = run_manifest(stack, manifest, key="manifests/clean.yaml")
    assert clean.exit_code == ExitCode.OK, (clean.error, clean.cause)
    assert not [e for e in stack.job_events if e.reason and e.reason.startswith("Host EC2")]

    chaos = _seed_with_one_kill_and_one_reclaim()
    stack.batch.chaos = chaos
    events_before = len(stack.job_events)
    chaotic = run_manifest(stack, manifest, key="manifests/chaotic.yaml")

    assert chaotic.exit_code == ExitCode.OK, (chaotic.error, chaotic.cause)
    assert chaotic.run_id != clean.run_id
    retried = [e for e in stack.job_events[events_before:] if e.status == "RUNNABLE" and e.attempt == 1]
    assert len(retried) == 2, retried  # the seed's one reclaim and one kill, each retried once
    summaries = {
        run.run_id: {a["age"]: a for a in json.loads((run.run_dir / "summary.json").read_text())["ages"]}
        for run in (clean, chaotic)
    }
    for age in AGES:
        before, after = summaries[clean.run_id][age], summaries[chaotic.run_id][age]
        assert after["status"] == "SUCCEEDED"
        assert after["slices"][0]["metrics"]["final_loss"] == before["slices"][0]["metrics"]["final_loss"]
        pi_clean, model_clean = _outputs(data_dir, clean.run_id, age)
        pi_chaos, model_chaos = _outputs(data_dir, chaotic.run_id, age)
        assert torch.equal(pi_clean, pi_chaos), f"age {age}: pi differs"
        assert model_clean.keys() == model_chaos.keys()
        assert all(torch.equal(model_clean[k], model_chaos[k]) for k in model_clean), f"age {age}: model differs"

    hits = _hits(chaos, AGES)
    killed_age = next(age for age, (first, *_) in hits.items() if first is not None and first[1])
    killed = summaries[chaotic.run_id][killed_age]
    first_log = stack.batch.log_paths(killed["job_id"])[0].read_text(encoding="utf-8")
    logged = [int(n) for n in re.findall(r"^epoch (\d+)/", first_log, flags=re.MULTILINE)]
    killed_epoch = max(logged, default=0)  # the last epoch the killed attempt reported (it got at least this far)
    resumed = killed["slices"][0]["metrics"]["resumed_from_epoch"] or 0
    assert resumed >= killed_epoch - CHECKPOINT_EVERY, (resumed, killed_epoch)


def test_local_cli_rejects_a_share_outside_0_to_1(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", [50], run_name="m")
    result = CliRunner().invoke(app, ["local", str(manifest), "--chaos-reclaim-share", "1.5"])
    assert result.exit_code == 2
    assert "--chaos-reclaim-share" in result.output


def test_a_hard_kill_mid_training_loses_at_most_one_checkpoint_interval(make_stack, tmp_path: Path) -> None:
    """The same guarantee without the dice: the host vanishes (SIGKILL) once epoch 300 is logged."""
    stack = make_stack(spot_interruptions=[SpotInterruption(age=50, after_output="epoch 300/", hard=True)])
    manifest = write_manifest(tmp_path / "kill.yaml", [50], run_name="kill", epochs=1000)

    result = run_manifest(stack, manifest)

    assert result.exit_code == ExitCode.OK, (result.error, result.cause)
    age = json.loads((result.run_dir / "summary.json").read_text())["ages"][0]
    first, second = stack.batch.log_paths(age["job_id"])
    logged = [int(n) for n in re.findall(r"^epoch (\d+)/", first.read_text(encoding="utf-8"), flags=re.MULTILINE)]
    killed_epoch = max(logged)
    assert killed_epoch >= 300 and "checkpoint" not in first.read_text(encoding="utf-8").splitlines()[-1]
    resumed = age["slices"][0]["metrics"]["resumed_from_epoch"]
    assert killed_epoch - CHECKPOINT_EVERY <= resumed <= killed_epoch + 10, (resumed, killed_epoch)
    assert f"resuming from epoch {resumed}" in second.read_text(encoding="utf-8")


def test_local_cli_hands_the_chaos_switches_to_the_stack(data_dir: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class Stop(Exception):
        pass

    seen: dict[str, object] = {}

    def fake_cloud(**options: object) -> None:
        seen.update(options)
        raise Stop

    monkeypatch.setattr("agesweep.local.cloud.LocalCloud", fake_cloud)
    manifest = write_manifest(tmp_path / "m.yaml", [50], run_name="m")
    args = ["local", str(manifest), "--data", str(data_dir), "--workdir", str(tmp_path / "work")]
    chaotic = CliRunner().invoke(app, [*args, "--chaos-reclaim-share", "0.3", "--chaos-kill-share", "0.1", "--chaos-seed", "7"])
    assert isinstance(chaotic.exception, Stop), chaotic.output
    assert seen["chaos"] == Chaos(reclaim_share=0.3, kill_share=0.1, seed=7)
    calm = CliRunner().invoke(app, args)
    assert isinstance(calm.exception, Stop) and seen["chaos"] is None
