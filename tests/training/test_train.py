"""The job end to end: output names, metrics, skip, resume (bit-identical), signals, S3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import torch
from moto import mock_aws

from agesweep.contracts import JobMetrics
from training import layout
from training.data import load_slice
from training.diagnostics import recovery
from training.reference import reference_loss
from training.train import main, parse_args, run

REPO = Path(__file__).resolve().parents[2]


def _args(inputs: Path, out: Path, *extra: str, age: int = 55, start: int = 0, end: int = 60, epochs: int = 12) -> list[str]:
    return [
        "--start_index", str(start), "--end_index", str(end), "--base_data_path", str(inputs),
        "--output_dir", str(out), "--age", str(age), "--run_id", "r1", "--epochs", str(epochs),
        "--log_every", "3", "--checkpoint_every", "4", *extra,
    ]


def _outputs(out: Path, age: int, start: int, end: int) -> dict[str, Path]:
    folder = layout.job_dir(out, "r1", age)
    return {
        "pi": folder / layout.pi_name(age, start, end),
        "model": folder / layout.model_name(age, start, end),
        "metrics": folder / layout.metrics_name(age, start, end),
        "success": folder / layout.success_name(start, end),
        "checkpoint": folder / layout.checkpoint_name(start, end),
    }


def test_outputs_and_metrics(tiny_inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AWS_BATCH_JOB_ID", "job-123")
    monkeypatch.setenv("AWS_BATCH_JOB_ATTEMPT", "1")
    monkeypatch.setenv("AGESWEEP_IMAGE", "123.dkr.ecr.eu-west-1.amazonaws.com/agesweep:abc")
    assert main(_args(tiny_inputs, tmp_path, "--seed", "5")) == 0
    files = _outputs(tmp_path, 55, 0, 60)
    checkpoint = files.pop("checkpoint")
    assert all(path.is_file() for path in files.values())
    assert not checkpoint.exists()  # removed once the job succeeded: the success marker keeps it skippable
    assert sorted(p.name for p in files["pi"].parent.iterdir()) == sorted(p.name for p in files.values())
    pi = torch.load(files["pi"])
    assert pi.shape == (60, 6, 52) and pi.min() >= 1e-8 and pi.max() <= 1 - 1e-8
    model = torch.load(files["model"])
    state = model["model_state_dict"]
    assert state["lambda_"].shape == (60, 4, 52) and state["gamma"].shape == (4, 4) and state["kappa"].shape == ()
    assert model["age"] == 55 and (model["start_index"], model["end_index"]) == (0, 60)
    assert model["E"].max() <= 55 - 30
    metrics = json.loads(files["metrics"].read_text())
    assert metrics["epochs"] == 12 and metrics["n_patients"] == 60 and metrics["device"] == "cpu"
    assert [epoch for epoch, _ in metrics["loss_history"]] == [0, 3, 6, 9, 12]
    assert metrics["final_loss"] == metrics["loss_history"][-1][1]
    assert metrics["resumed_from_epoch"] is None and metrics["peak_rss_mb"] > 0
    assert metrics["cpu_seconds"] > 0  # user + system time: what right-sizing compares with the vCPUs asked
    lineage = metrics["lineage"]
    assert (lineage["job_id"], lineage["attempt"], lineage["array_index"]) == ("job-123", 1, None)
    assert lineage["image"].endswith("agesweep:abc") and lineage["parameters"]["seed"] == 5
    assert "epoch 9/12" in capsys.readouterr().out


def test_trust_metrics(tiny_inputs, tmp_path):
    """Issue 15: C at initialisation, loss per observed cell, divergence, recovery."""
    assert main(_args(tiny_inputs, tmp_path, epochs=30)) == 0
    files = _outputs(tmp_path, 55, 0, 60)
    metrics = json.loads(files["metrics"].read_text())
    assert 0.0 <= metrics["heldout_c_index_initial"] <= 1.0
    assert metrics["heldout_c_index_initial"] != metrics["heldout_c_index"]
    assert metrics["divergence"] == {"suspect": False, "reasons": []}
    # loss per cell: the reference's negative log-likelihood of the saved fit, over sum(E_a + 1)
    data = load_slice(tiny_inputs, 0, 60, 55, layout.ENROLLMENT_MODEL_FILE)
    state = torch.load(files["model"])["model_state_dict"]
    y = torch.load(tiny_inputs / layout.Y_FILE)[:60]
    nll = reference_loss(
        state["lambda_"].double(), state["gamma"].double(), state["kappa"].double(), data.phi.double(), data.g.double(),
        data.refs.double(), data.exit_time_capped, y.double(), prior_weight=0.0,
    ).item() * 60
    cells = int((data.exit_time_capped + 1).sum())
    assert metrics["observed_cells"] == cells
    assert metrics["loss_per_cell"] == pytest.approx(nll / cells, rel=1e-5)
    # the tiny inputs are synthetic: the generating theta is known
    truth = torch.load(tiny_inputs / layout.SYNTH_TRUTH_FILE)["lambda_"][:60]
    assert metrics["recovery"] == recovery(state["lambda_"], truth, 55 - 30)
    assert metrics["recovery"]["theta_pearson"] > 0.5
    # collation reads this file as agesweep.contracts.JobMetrics: every trainer field must be a known one
    read = JobMetrics.model_validate(metrics)
    assert read.recovery is not None and read.recovery.theta_pearson == metrics["recovery"]["theta_pearson"]
    assert read.divergence is not None and read.divergence.suspect is False
    assert read.cpu_seconds == metrics["cpu_seconds"] and read.heldout_c_index_initial == metrics["heldout_c_index_initial"]


def test_a_diverging_run_is_flagged(tiny_inputs, tmp_path):
    assert main(_args(tiny_inputs, tmp_path, "--learning_rate", "1.0", epochs=30)) == 0
    metrics = json.loads(_outputs(tmp_path, 55, 0, 60)["metrics"].read_text())
    assert metrics["divergence"]["suspect"] and metrics["divergence"]["reasons"], metrics["loss_history"]


def test_rerun_with_success_marker_skips_and_keeps_files(tiny_inputs, tmp_path, capsys):
    assert main(_args(tiny_inputs, tmp_path)) == 0
    files = _outputs(tmp_path, 55, 0, 60)
    del files["checkpoint"]
    before = {name: path.stat().st_mtime_ns for name, path in files.items()}
    assert main(_args(tiny_inputs, tmp_path, "--seed", "99")) == 0
    assert "skipped" in capsys.readouterr().out
    assert {name: path.stat().st_mtime_ns for name, path in files.items()} == before


def test_interrupted_and_resumed_equals_uninterrupted(tiny_inputs, tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert main(_args(tiny_inputs, straight)) == 0

    def sigterm_after_epoch_5(done: int) -> None:
        if done == 5:
            signal.raise_signal(signal.SIGTERM)  # the real handler sets the flag

    assert run(parse_args(_args(tiny_inputs, interrupted)), on_epoch=sigterm_after_epoch_5) == 143
    files = _outputs(interrupted, 55, 0, 60)
    assert files["checkpoint"].is_file() and not files["success"].exists()
    assert torch.load(files["checkpoint"])["epoch"] == 5
    assert main(_args(tiny_inputs, interrupted)) == 0

    expected = _outputs(straight, 55, 0, 60)
    assert torch.equal(torch.load(files["pi"]), torch.load(expected["pi"]))
    ours, theirs = torch.load(files["model"])["model_state_dict"], torch.load(expected["model"])["model_state_dict"]
    assert all(torch.equal(ours[name], theirs[name]) for name in ("lambda_", "gamma", "kappa"))
    metrics = json.loads(files["metrics"].read_text())
    assert metrics["resumed_from_epoch"] == 5
    straight_metrics = json.loads(expected["metrics"].read_text())
    for field in ("loss_history", "final_loss", "heldout_c_index", "heldout_c_index_initial", "loss_per_cell", "divergence", "recovery"):
        assert metrics[field] == straight_metrics[field], field


def _sigterm_after(epoch: int):
    return lambda done: done == epoch and signal.raise_signal(signal.SIGTERM)


def _folder_state(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def test_checkpoint_is_removed_on_success_unless_kept(tiny_inputs, tmp_path, capsys):
    """Done when: a succeeded job leaves no checkpoint (888 MB per demo run, over half checkpoints)."""
    dropped, kept = tmp_path / "dropped", tmp_path / "kept"
    assert main(_args(tiny_inputs, dropped)) == 0
    assert main(_args(tiny_inputs, kept, "--keep_checkpoint")) == 0
    assert main(_args(tiny_inputs, tmp_path / "kept2", "--keep_checkpoint", "true")) == 0
    assert not _outputs(dropped, 55, 0, 60)["checkpoint"].exists()
    assert not _outputs(dropped, 55, 0, 60)["checkpoint"].with_name("checkpoint_0_60.pt.prev").exists()
    assert _outputs(kept, 55, 0, 60)["checkpoint"].is_file() and _outputs(tmp_path / "kept2", 55, 0, 60)["checkpoint"].is_file()
    capsys.readouterr()
    assert main(_args(tiny_inputs, dropped)) == 0  # still skipped: the marker is what counts
    assert "skipped" in capsys.readouterr().out


def test_stale_tmp_files_of_its_own_slice_are_removed(tiny_inputs, tmp_path):
    """Issue item 17: a job killed while writing a checkpoint leaves .checkpoint_*.tmp behind."""
    folder = layout.job_dir(tmp_path, "r1", 55)
    folder.mkdir(parents=True)
    ours = [folder / ".checkpoint_0_60.pt.k1l2ed.tmp", folder / f".{layout.pi_name(55, 0, 60)}.x9.tmp"]
    other_slice = folder / ".checkpoint_60_120.pt.busy.tmp"  # another array child's, maybe being written now
    for path in [*ours, other_slice]:
        path.write_bytes(b"half a checkpoint")
    assert main(_args(tiny_inputs, tmp_path, epochs=2)) == 0
    assert not any(path.exists() for path in ours)
    assert other_slice.is_file()


def test_retry_resumes_from_the_retried_runs_checkpoint(tiny_inputs, tmp_path, capsys):
    """Issue item 15: the retry (a new run id) of a hard-killed job resumes from the original run's
    checkpoint, bit-identical to an uninterrupted run, and never writes into the original's folder."""
    straight = tmp_path / "straight"
    assert main(_args(tiny_inputs, straight)) == 0
    killed = run(parse_args(_args(tiny_inputs, tmp_path, "--run_id", "r0")), on_epoch=_sigterm_after(5))
    assert killed == 143
    original = layout.job_dir(tmp_path, "r0", 55)
    before = _folder_state(original)
    capsys.readouterr()
    assert main(_args(tiny_inputs, tmp_path, "--resume_from", "r0")) == 0
    assert "resuming from epoch 5 (run r0's checkpoint_0_60.pt)" in capsys.readouterr().out
    files, expected = _outputs(tmp_path, 55, 0, 60), _outputs(straight, 55, 0, 60)
    assert torch.equal(torch.load(files["pi"]), torch.load(expected["pi"]))
    metrics = json.loads(files["metrics"].read_text())
    assert (metrics["resumed_from_epoch"], metrics["resumed_from_run"], metrics["run_id"]) == (5, "r0", "r1")
    assert _folder_state(original) == before


def test_retry_with_other_parameters_starts_over(tiny_inputs, tmp_path, capsys):
    run(parse_args(_args(tiny_inputs, tmp_path, "--run_id", "r0")), on_epoch=_sigterm_after(5))
    assert main(_args(tiny_inputs, tmp_path, "--resume_from", "r0", "--seed", "7")) == 0
    assert "not resuming from run r0" in capsys.readouterr().out
    assert json.loads(_outputs(tmp_path, 55, 0, 60)["metrics"].read_text())["resumed_from_epoch"] is None


def test_retry_reuses_the_retried_runs_finished_outputs(tiny_inputs, tmp_path, capsys, monkeypatch):
    """Issue item 15: an (age, slice) the original run finished is not trained again by the retry:
    its outputs appear in the retry's own folder, published as the retry's (metrics, marker)."""
    assert main(_args(tiny_inputs, tmp_path, "--run_id", "r0")) == 0
    original = layout.job_dir(tmp_path, "r0", 55)
    before = _folder_state(original)
    capsys.readouterr()
    monkeypatch.setattr("training.train.load_slice", lambda *a, **k: pytest.fail("the retry trained again"))
    assert main(_args(tiny_inputs, tmp_path, "--resume_from", "r0")) == 0
    assert "reused: run r0 already finished age 55 slice 0-60" in capsys.readouterr().out
    files = _outputs(tmp_path, 55, 0, 60)
    assert files["success"].is_file() and not files["checkpoint"].exists()
    assert torch.equal(torch.load(files["pi"]), torch.load(original / layout.pi_name(55, 0, 60)))
    metrics = json.loads(files["metrics"].read_text())
    assert (metrics["run_id"], metrics["reused_from_run"]) == ("r1", "r0")
    assert _folder_state(original) == before
    assert main(_args(tiny_inputs, tmp_path, "--resume_from", "r0")) == 0  # and the retry's rerun skips
    assert "skipped" in capsys.readouterr().out


def test_checkpoint_from_other_parameters_is_not_clobbered(tiny_inputs, tmp_path):
    run(parse_args(_args(tiny_inputs, tmp_path)), on_epoch=lambda done: done == 2 and signal.raise_signal(signal.SIGTERM))
    checkpoint = _outputs(tmp_path, 55, 0, 60)["checkpoint"]
    before = checkpoint.read_bytes()
    assert main(_args(tiny_inputs, tmp_path, "--seed", "7")) == 2
    assert checkpoint.read_bytes() == before


def test_array_child_trains_its_own_slice(tiny_inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_BATCH_JOB_ARRAY_INDEX", "1")
    assert main(_args(tiny_inputs, tmp_path, "--slice_size", "30", epochs=2)) == 0
    files = _outputs(tmp_path, 55, 30, 60)
    assert files["success"].is_file()
    metrics = json.loads(files["metrics"].read_text())
    assert (metrics["start_index"], metrics["end_index"], metrics["n_patients"]) == (30, 60, 30)
    assert metrics["lineage"]["array_index"] == "1"


def _subprocess(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "training.train", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "OMP_NUM_THREADS": "1", **env},
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--age": "80"}, "error: age 80 is outside 40..79"),
        ({"--start_index": "100", "--end_index": "200"}, "error: empty slice: start_index 100 is beyond the 80 patients"),
        ({"--base_data_path": "/nonexistent"}, "error: missing input file(s) in /nonexistent"),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny_inputs, tmp_path, change, message):
    args = _args(tiny_inputs, tmp_path, epochs=1)
    for flag, value in change.items():
        args[args.index(flag) + 1] = value
    proc = _subprocess(args)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert stderr.strip().startswith(message) and len(stderr.strip().splitlines()) == 1, stderr


def test_sigterm_checkpoints_and_exits_non_zero_quickly(tiny_inputs, tmp_path):
    proc = _subprocess(_args(tiny_inputs, tmp_path, "--log_every", "1", epochs=100_000))
    for line in proc.stdout:  # wait until training is under way
        if line.startswith("epoch 3/"):
            break
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert time.monotonic() - sent < 5
    checkpoint = torch.load(_outputs(tmp_path, 55, 0, 60)["checkpoint"])
    assert checkpoint["epoch"] >= 4


@mock_aws
def test_s3_inputs_and_metrics_upload(tiny_inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="inputs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.create_bucket(Bucket="results", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for path in tiny_inputs.iterdir():
        s3.upload_file(str(path), "inputs", f"cohort/{path.name}")
    args = _args(
        "s3://inputs/cohort", tmp_path / "out", "--results_uri", "s3://results/runs/r1/", "--cache_dir", str(tmp_path / "cache"), epochs=2
    )
    assert main(args) == 0
    body = s3.get_object(Bucket="results", Key="runs/r1/metrics/age_55/metrics_age_55_0_60.json")["Body"].read()
    local = _outputs(tmp_path / "out", 55, 0, 60)["metrics"]
    assert json.loads(body) == json.loads(local.read_text())
    assert sorted(p.name for p in next((tmp_path / "cache").iterdir()).iterdir()) == sorted(p.name for p in tiny_inputs.iterdir())


@mock_aws
def test_missing_s3_input_is_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket="inputs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    assert main(_args("s3://inputs/none/", tmp_path, "--cache_dir", str(tmp_path / "cache"), epochs=1)) == 2


def test_failed_upload_fails_the_job_and_a_retry_finishes_it(tiny_inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():  # no bucket: the upload fails
        assert main(_args(tiny_inputs, tmp_path, "--results_uri", "s3://absent/", epochs=3)) == 1
    files = _outputs(tmp_path, 55, 0, 60)
    assert not files["success"].exists() and torch.load(files["checkpoint"])["epoch"] == 3
    with mock_aws():
        boto3.client("s3", region_name="eu-west-1").create_bucket(
            Bucket="absent", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        assert main(_args(tiny_inputs, tmp_path, "--results_uri", "s3://absent/", epochs=3)) == 0
    assert files["success"].is_file()
    assert json.loads(files["metrics"].read_text())["resumed_from_epoch"] == 3


def test_malformed_results_uri_fails_before_training(tiny_inputs, tmp_path):
    assert main(_args(tiny_inputs, tmp_path, "--results_uri", "s3://", epochs=1)) == 2
    assert not layout.job_dir(tmp_path, "r1", 55).exists()
