"""Trainer speed and memory, as ratios measured in one run.

Speed (N=2,000, D=100, T=52, K=20, same threads): one epoch = loss + backward + Adam step for
  * reference: the direct formulation (N x D x T pi and masks, GP prior looped over signatures
    and patients with cholesky_solve, as the public reference trainer) + torch.optim.Adam;
  * plain vectorised: the same data term, the prior batched into one cholesky_solve;
  * fused: training.model (what the job runs) + training.optim.Adam.
Accuracy: the float32 loss of each against a float64 evaluation of the reference formulation.
Memory (N=10,000, D=348, T=52, K=20): the real job as a subprocess, its peak RSS (VmHWM).

    .venv/bin/python benchmarks/bench_trainer.py            # ~1.5 minutes on 2 cores
    .venv/bin/python benchmarks/bench_trainer.py --skip-memory --baseline-epochs 2
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
from training.kernels import lambda_kernel  # noqa: E402
from training.model import HEALTHY_MEAN, PI_MAX, PI_MIN, PRIOR_WEIGHT, build_problem, initial_parameters, total_loss  # noqa: E402
from training.optim import Adam  # noqa: E402
from training.reference import reference_loss  # noqa: E402
from training.synth import generate  # noqa: E402

SPEED_SIZE = {"patients": 2000, "diseases": 100, "times": 52, "signatures": 20, "prs": 10}
MEMORY_SIZE = {"patients": 10_000, "diseases": 348, "times": 52, "signatures": 20, "prs": 10}


def plain_vectorised_loss(lam, gamma, kappa, phi, g, refs, exit_time, y):
    """What a straightforward vectorisation gives: autograd over full N x D x T tensors, the
    prior as one batched cholesky_solve."""
    n, k_total, n_times = lam.shape
    pi = torch.clamp(kappa * torch.einsum("nkt,kdt->ndt", torch.softmax(lam, dim=1), torch.sigmoid(phi)), PI_MIN, PI_MAX)
    grid = torch.arange(n_times).reshape(1, 1, -1)
    before = (grid < exit_time.unsqueeze(-1)).float()
    at = (grid == exit_time.unsqueeze(-1)).float()
    data = -(torch.sum(torch.log(1 - pi) * before) + torch.sum(torch.log(pi) * at * y) + torch.sum(torch.log(1 - pi) * at * (1 - y))) / n
    mean = torch.cat([refs[None, :] + g @ gamma[:, : k_total - 1], torch.full((n, 1), HEALTHY_MEAN)], dim=1)
    dev = (lam - mean[:, :, None]).reshape(-1, n_times).T
    chol = torch.linalg.cholesky(lambda_kernel(n_times).float())
    prior = 0.5 * torch.sum(dev * torch.cholesky_solve(dev, chol)) / n
    return data + PRIOR_WEIGHT * prior


def _time_epochs(step, epochs: int) -> list[float]:
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    return seconds


def speed(inputs: Path, age: int, epochs: int, baseline_epochs: int) -> dict:
    data = load_slice(inputs, 0, SPEED_SIZE["patients"], age, layout.ENROLLMENT_MODEL_FILE)
    y = torch.load(inputs / layout.Y_FILE)[: SPEED_SIZE["patients"]].float()
    problem = build_problem(data.g, data.refs, data.exit_time_capped, data.y_at_capped_exit, data.phi)
    start = initial_parameters(data.g, data.refs, data.y_mean, data.psi, problem.n_times, seed=42)
    fixed = (data.phi, data.g, data.refs, data.exit_time_capped, y)

    def autograd_step(loss_fn):
        params = [t.clone().requires_grad_(True) for t in (start["lambda_"], start["gamma"], start["kappa"])]
        optimizer = torch.optim.Adam(params, lr=0.1)

        def step():
            optimizer.zero_grad()
            loss_fn(*params, *fixed).backward()
            optimizer.step()

        return step

    params = {name: t.clone().requires_grad_(True) for name, t in start.items()}
    optimizer = Adam(params, lr=0.1)

    def fused_step():
        optimizer.zero_grad()
        total_loss(problem, params).backward()
        optimizer.step()

    fused = _time_epochs(fused_step, epochs + 2)[2:]  # two warm-up epochs
    plain = _time_epochs(autograd_step(plain_vectorised_loss), max(3, baseline_epochs))[1:]
    reference = _time_epochs(autograd_step(reference_loss), baseline_epochs)

    with torch.no_grad():
        p64 = [start[name].double() for name in ("lambda_", "gamma", "kappa")]
        exact = reference_loss(*p64, data.phi.double(), data.g.double(), data.refs.double(), data.exit_time_capped, y.double()).item()
        losses = {
            "fused": total_loss(problem, {name: t.clone() for name, t in start.items()}).item(),
            "plain_vectorised": plain_vectorised_loss(start["lambda_"], start["gamma"], start["kappa"], *fixed).item(),
            "reference_float32": reference_loss(start["lambda_"], start["gamma"], start["kappa"], *fixed).item(),
        }
    per_epoch = {"reference": statistics.median(reference), "plain_vectorised": statistics.median(plain), "fused": statistics.median(fused)}
    return {
        "age": age,
        "t_used": problem.t_used,
        "seconds_per_epoch": per_epoch,
        "speedup_vs_reference": {name: per_epoch["reference"] / value for name, value in per_epoch.items()},
        "loss_float64": exact,
        "relative_error_vs_float64": {name: abs(value - exact) / abs(exact) for name, value in losses.items()},
        "epochs_timed": {"reference": len(reference), "plain_vectorised": len(plain), "fused": len(fused)},
    }


def memory(workdir: Path, threads: int, epochs: int) -> dict:
    inputs = generate(workdir / "big", seed=1, **MEMORY_SIZE)
    out = workdir / "big_out"
    command = [
        sys.executable, "-m", "training.train", "--start_index", "0", "--end_index", str(MEMORY_SIZE["patients"]),
        "--base_data_path", str(inputs), "--output_dir", str(out), "--age", "79", "--epochs", str(epochs),
        "--log_every", "1", "--run_id", "bench",
    ]
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - started
    metrics = json.loads(next(out.rglob("metrics_*.json")).read_text())
    return {
        "size": MEMORY_SIZE,
        "epochs": epochs,
        "peak_rss_mb_job": metrics["peak_rss_mb"],
        "train_seconds_per_epoch": metrics["train_time_s"] / epochs,
        "job_wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ages", type=int, nargs="+", default=[79, 55], help="79 touches all times; 55 about half")
    parser.add_argument("--epochs", type=int, default=20, help="timed fused epochs")
    parser.add_argument("--baseline-epochs", type=int, default=3, help="timed reference epochs (~8 s each)")
    parser.add_argument("--memory-epochs", type=int, default=5)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict = {"threads": args.threads, "torch": torch.__version__, "speed_size": SPEED_SIZE, "speed": []}
    with tempfile.TemporaryDirectory(prefix="bench_trainer_") as tmp:
        inputs = generate(Path(tmp) / "speed", seed=1, **SPEED_SIZE)
        for age in args.ages:
            result = speed(inputs, age, args.epochs, args.baseline_epochs)
            results["speed"].append(result)
            s, x, e = result["seconds_per_epoch"], result["speedup_vs_reference"], result["relative_error_vs_float64"]
            print(
                f"age {age} (t_used {result['t_used']}): reference {s['reference']:.3f} s/epoch, "
                f"plain vectorised {s['plain_vectorised']:.3f} s ({x['plain_vectorised']:.1f}x), "
                f"fused {s['fused']:.4f} s ({x['fused']:.1f}x); loss rel. error vs float64: "
                f"fused {e['fused']:.1e}, plain {e['plain_vectorised']:.1e}, reference f32 {e['reference_float32']:.1e}",
                flush=True,
            )
        if not args.skip_memory:
            results["memory"] = memory(Path(tmp), args.threads, args.memory_epochs)
            m = results["memory"]
            print(
                f"N=10,000 D=348 K=20 age 79: peak RSS {m['peak_rss_mb_job']:.0f} MB, "
                f"{m['train_seconds_per_epoch']:.2f} s/epoch on {args.threads} threads",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
