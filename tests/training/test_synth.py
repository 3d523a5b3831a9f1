"""Synthetic inputs have the trainer's layout and enough structure for training to mean something."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from training import layout
from training.synth import generate
from training.synth import main as synth_main
from training.train import main as train_main

ROOT = Path(__file__).resolve().parents[2]


def test_layout_and_shapes(tmp_path):
    assert synth_main(["--out", str(tmp_path), "--patients", "30", "--diseases", "5", "--signatures", "2", "--prs", "3"]) == 0
    y = torch.load(tmp_path / layout.Y_FILE)
    e = torch.load(tmp_path / layout.E_FILE)
    assert y.shape == (30, 5, 52) and e.shape == (30, 5) and torch.load(tmp_path / layout.G_FILE).shape == (30, 3)
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(y.sum(dim=2) <= 1)  # one onset at most, at the exit time
    assert torch.equal(y.sum(dim=2).bool(), y.gather(2, e[..., None])[..., 0].bool())
    state = torch.load(tmp_path / layout.ENROLLMENT_MODEL_FILE)["model_state_dict"]
    assert state["phi"].shape == (3, 5, 52) and state["psi"].shape == (3, 5)
    assert torch.load(tmp_path / layout.REFERENCES_FILE)["signature_refs"].shape == (2,)
    assert torch.load(tmp_path / layout.ESSENTIALS_FILE)["prevalence_t"].shape == (5, 52)
    assert (tmp_path / layout.COVARIATES_FILE).read_text().splitlines()[0] == "eid,sex,enrollment_age"


def test_same_seed_same_data(tmp_path):
    a = generate(tmp_path / "a", patients=20, diseases=4, signatures=2, prs=2, seed=1)
    b = generate(tmp_path / "b", patients=20, diseases=4, signatures=2, prs=2, seed=1)
    assert all((a / name).read_bytes() == (b / name).read_bytes() for name in (layout.E_FILE, layout.COVARIATES_FILE))


def test_bad_sizes_are_rejected(tmp_path):
    assert synth_main(["--out", str(tmp_path), "--diseases", "2", "--signatures", "3"]) == 2
    with pytest.raises(ValueError, match="times must be"):
        generate(tmp_path, times=40)


def test_the_demo_manifests_training_converges_on_the_demo_data(tmp_path):
    """The demo's learning rate and epochs (events/manifests/demo.yaml) fit the demo-size data
    without a spike: the loss falls at every record, the held-out C beats its initial value, and
    nothing is flagged suspect."""
    demo = yaml.safe_load((ROOT / "events" / "manifests" / "demo.yaml").read_text())["training"]
    inputs = generate(tmp_path / "in", seed=0)
    args = ["--start_index", "0", "--end_index", "2000", "--base_data_path", str(inputs), "--output_dir",
            str(tmp_path / "out"), "--age", "60", "--epochs", str(demo["epochs"]),
            "--learning_rate", str(demo["learning_rate"]), "--seed", str(demo["seed"])]
    assert train_main(args) == 0
    metrics = json.loads(next((tmp_path / "out").rglob("metrics_*.json")).read_text())
    losses = [loss for _, loss in metrics["loss_history"]]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:], strict=False)), losses
    assert metrics["heldout_c_index"] > metrics["heldout_c_index_initial"]
    assert metrics["divergence"] == {"suspect": False, "reasons": []}


def test_training_on_it_lowers_the_loss_and_beats_chance(tmp_path):
    inputs = generate(tmp_path / "in", patients=600, diseases=10, signatures=3, prs=4, seed=2)
    args = ["--start_index", "0", "--end_index", "600", "--base_data_path", str(inputs), "--output_dir",
            str(tmp_path / "out"), "--age", "55", "--epochs", "40", "--learning_rate", "0.03"]
    assert train_main(args) == 0
    metrics = json.loads(next((tmp_path / "out").rglob("metrics_*.json")).read_text())
    losses = [loss for _, loss in metrics["loss_history"]]
    assert losses[-1] < losses[0]
    assert metrics["heldout_c_index"] > 0.55 and metrics["heldout_diseases"] == 10
