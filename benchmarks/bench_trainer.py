"""Trainer speed and memory at the seed shape, as ratios measured in one run.

Shape: N=10,000 patients, D=348 diseases, T=52 times, K=20 signatures, 10 PRS, age 79 (the
seed's sweep; 79 touches every time up to the age), ``--threads`` threads (default 2).

* Speed: one epoch = loss + gradient + Adam step, in this process, for
    - reference: ``training.reference`` (the published formulation: N x D x T pi and masks, the
      GP prior looped over signatures and patients with cholesky_solve) + torch.optim.Adam,
      timed on ``--reference-epochs`` (~67 s and ~12 GB each on 2 cores);
    - fused: ``training.model.loss_and_grad`` + ``training.optim.Adam``, what the job runs,
      timed on ``--epochs`` after two warm-up epochs (median, and the fastest epoch).
  On a shared machine, read the load averages in the JSON: two-thread epochs stall whenever
  another process holds a core.
  Both start from the same parameters; their epoch-0 losses are compared (float32 both).
* Accuracy: at N=2,000, D=100, the float32 loss of each against a float64 evaluation of the
  reference formulation (the float64 reference does not fit in memory at the seed shape).
* Job: the real ``python -m training.train`` as a subprocess for ``--job-epochs`` (default 200,
  measured, not extrapolated): its peak RSS (VmHWM), seconds per training epoch, wall time.

    .venv/bin/python benchmarks/bench_trainer.py                 # ~4 minutes on 2 quiet cores
    .venv/bin/python benchmarks/bench_trainer.py --skip-memory --baseline-epochs 1 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from training import layout  # noqa: E402
from training.data import load_slice  # noqa: E402
from training.model import build_problem, initial_parameters, loss_and_grad, total_loss  # noqa: E402
from training.optim import Adam  # noqa: E402
from training.reference import reference_loss  # noqa: E402
from training.synth import generate  # noqa: E402

SEED_SIZE = {"patients": 10_000, "diseases": 348, "times": 52, "signatures": 20, "prs": 10}
ACCURACY_SIZE = {"patients": 2000, "diseases": 100, "times": 52, "signatures": 20, "prs": 10}


def _timed(step, epochs: int) -> tuple[list[float], list[float]]:
    """Seconds and losses of ``epochs`` calls of ``step``."""
    seconds, losses = [], []
    for _ in range(epochs):
        started = time.perf_counter()
        losses.append(step())
        seconds.append(time.perf_counter() - started)
    return seconds, losses


def _setup(inputs: Path, patients: int, age: int):
    data = load_slice(inputs, 0, patients, age, layout.ENROLLMENT_MODEL_FILE)
    y = torch.load(inputs / layout.Y_FILE, mmap=True)[:patients].float()
    problem = build_problem(data.g, data.refs, data.exit_time_capped, data.y_at_capped_exit, data.phi)
    start = initial_parameters(data.g, data.refs, data.y_mean, data.psi, problem.n_times, seed=42)
    return data, y, problem, start


def _time_fused(problem, start: dict, epochs: int) -> tuple[list[float], list[float]]:
    """What the job runs per epoch; its state is freed on return, before the reference's ~12 GB."""
    params = {name: t.clone().requires_grad_(True) for name, t in problem.to_working(start).items()}
    optimizer = Adam(params, lr=0.1)

    def fused_step() -> float:
        loss = loss_and_grad(problem, params)
        optimizer.step()
        return float(loss)

    return _timed(fused_step, epochs)


def speed(inputs: Path, age: int, epochs: int, reference_epochs: int) -> dict:
    data, y, problem, start = _setup(inputs, SEED_SIZE["patients"], age)
    fused, fused_losses = _time_fused(problem, start, epochs + 2)

    ref_params = [start[name].clone().requires_grad_(True) for name in ("lambda_", "gamma", "kappa")]
    ref_optimizer = torch.optim.Adam(ref_params, lr=0.1)
    fixed = (data.phi, data.g, data.refs, data.exit_time_capped, y)

    def reference_step() -> float:
        ref_optimizer.zero_grad()
        loss = reference_loss(*ref_params, *fixed)
        loss.backward()
        ref_optimizer.step()
        return float(loss.detach())

    reference, reference_losses = _timed(reference_step, reference_epochs)
    per_epoch = {"reference": statistics.median(reference), "fused": statistics.median(fused[2:])}
    return {
        "age": age,
        "t_used": problem.t_used,
        "seconds_per_epoch": per_epoch,
        "fused_fastest_epoch_s": min(fused[2:]),
        "speedup_vs_reference": per_epoch["reference"] / per_epoch["fused"],
        "epochs_timed": {"reference": len(reference), "fused": len(fused) - 2},
        "epoch0_loss": {"reference": reference_losses[0], "fused": fused_losses[0]},
        "epoch0_relative_difference": abs(fused_losses[0] - reference_losses[0]) / abs(reference_losses[0]),
    }


def accuracy(inputs: Path, age: int) -> dict:
    data, y, problem, start = _setup(inputs, ACCURACY_SIZE["patients"], age)
    with torch.no_grad():
        p64 = [start[name].double() for name in ("lambda_", "gamma", "kappa")]
        exact = reference_loss(*p64, data.phi.double(), data.g.double(), data.refs.double(), data.exit_time_capped, y.double()).item()
        losses = {
            "fused": total_loss(problem, problem.to_working(start)).item(),
            "reference_float32": reference_loss(
                start["lambda_"], start["gamma"], start["kappa"], data.phi, data.g, data.refs, data.exit_time_capped, y
            ).item(),
        }
    return {"age": age, "loss_float64": exact, "relative_error_vs_float64": {k: abs(v - exact) / abs(exact) for k, v in losses.items()}}


def job(inputs: Path, workdir: Path, threads: int, epochs: int) -> dict:
    out = workdir / "job_out"
    command = [
        sys.executable, "-m", "training.train", "--start_index", "0", "--end_index", str(SEED_SIZE["patients"]),
        "--base_data_path", str(inputs), "--output_dir", str(out), "--age", "79", "--epochs", str(epochs),
        "--log_every", "10", "--run_id", "bench",
    ]
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - started
    metrics = json.loads(next(out.rglob("metrics_*.json")).read_text())
    return {
        "epochs": epochs,
        "peak_rss_mb_job": metrics["peak_rss_mb"],
        "train_seconds_per_epoch": metrics["train_time_s"] / epochs,
        "train_time_s": metrics["train_time_s"],
        "job_wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ages", type=int, nargs="+", default=[79], help="ages timed at the seed shape")
    parser.add_argument("--epochs", type=int, default=20, help="timed fused epochs (after two warm-up epochs)")
    parser.add_argument("--reference-epochs", "--baseline-epochs", type=int, default=1, help="timed reference epochs (~67 s each)")
    parser.add_argument("--job-epochs", "--memory-epochs", type=int, default=200, help="epochs of the real job")
    parser.add_argument("--skip-memory", action="store_true", help="skip the real job (peak RSS, 200-epoch wall time)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict = {
        "threads": args.threads, "torch": torch.__version__, "seed_size": SEED_SIZE,
        "load_average_at_start": os.getloadavg(), "speed": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench_trainer_") as tmp:
        seed_inputs = generate(Path(tmp) / "seed", seed=1, **SEED_SIZE)
        for age in args.ages:
            result = speed(seed_inputs, age, args.epochs, args.reference_epochs)
            results["speed"].append(result)
            s = result["seconds_per_epoch"]
            print(
                f"N=10,000 D=348 T=52 K=20 age {age} (t_used {result['t_used']}), {args.threads} threads: reference "
                f"{s['reference']:.2f} s/epoch, fused {s['fused']:.3f} s/epoch (median; fastest {result['fused_fastest_epoch_s']:.3f}): "
                f"{result['speedup_vs_reference']:.0f}x; "
                f"epoch-0 loss relative difference {result['epoch0_relative_difference']:.1e}",
                flush=True,
            )
        results["accuracy"] = accuracy(generate(Path(tmp) / "accuracy", seed=1, **ACCURACY_SIZE), 79)
        e = results["accuracy"]["relative_error_vs_float64"]
        print(
            f"N=2,000 D=100 age 79: loss relative error vs float64: fused {e['fused']:.1e}, "
            f"reference float32 {e['reference_float32']:.1e}"
        )
        if not args.skip_memory:
            results["job"] = job(seed_inputs, Path(tmp), args.threads, args.job_epochs)
            m = results["job"]
            print(
                f"job at N=10,000 D=348 K=20 age 79, {m['epochs']} epochs on {args.threads} threads: peak RSS "
                f"{m['peak_rss_mb_job']:.0f} MB, {m['train_seconds_per_epoch']:.3f} s/epoch, training {m['train_time_s']:.1f} s, "
                f"wall {m['job_wall_s']:.1f} s",
                flush=True,
            )
    results["load_average_at_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
