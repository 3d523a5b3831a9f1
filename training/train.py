"""``python -m training.train``: fit the fixed-phi Aladyn model for one age on one patient slice.

A drop-in for the reference job (same flags, inputs and output names; docs/internals.md), which
resumes from its own checkpoint after a spot interruption and skips work already finished.

A retry names the run it retries (``--resume_from RUN_ID``): when this job's own folder holds
neither a checkpoint nor a success marker, the same (age, slice) of that run is looked up in
``<output_dir>/<RUN_ID>/age_<AGE>/`` - its finished outputs are copied (skip), or its checkpoint
is resumed from (same parameters only). That folder is only ever read.

Exit codes: 0 done (or already done: skipped); 1 upload of the metrics failed (retry resumes);
2 bad input, one line on stderr; 143 stopped by SIGTERM after writing a checkpoint (130: SIGINT).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from training import layout
from training.data import InputError, SliceData, load_slice
from training.diagnostics import divergence, recovery
from training.evaluate import heldout_c_index
from training.model import build_problem, gp_prior, initial_parameters, loss_and_grad, predict_pi, total_loss
from training.optim import Adam
from training.storage import fetch_inputs, link_or_copy, put_json, remove_stale_tmp, save_tensor_file, save_text, split_s3

LINEAGE_ENV = {
    "job_id": "AWS_BATCH_JOB_ID",
    "attempt": "AWS_BATCH_JOB_ATTEMPT",
    "array_index": "AWS_BATCH_JOB_ARRAY_INDEX",
    "image": "AGESWEEP_IMAGE",
    "job_definition": "AGESWEEP_JOB_DEFINITION",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--start_index", type=int, required=True, help="first patient row of the slice")
    parser.add_argument("--end_index", type=int, required=True, help="end of the slice (exclusive, clipped to N)")
    parser.add_argument(
        "--slice_size", type=int, default=0,
        help="0: one slice; S > 0 with AWS_BATCH_JOB_ARRAY_INDEX=i trains start+i*S .. min(start+(i+1)*S, end)",
    )
    parser.add_argument("--base_data_path", required=True, help="input folder or s3:// prefix")
    parser.add_argument("--output_dir", required=True, type=Path, help="outputs go to <output_dir>/<run_id>/age_<AGE>/")
    parser.add_argument("--age", type=int, required=True, help=f"target age, {layout.AGE_MIN}..{layout.AGE_MAX}")
    parser.add_argument("--run_id", default="manual", help="names the run folder; reruns of one run resume or skip")
    parser.add_argument(
        "--resume_from", default="none",
        help="run id of an earlier run of this (age, slice) whose finished outputs or checkpoint to reuse, or none",
    )
    parser.add_argument(
        "--keep_checkpoint", nargs="?", const="true", default="false", type=_flag,
        help="keep the checkpoint once the job succeeded (default false: removed; the success marker keeps it skippable)",
    )
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--checkpoint_every", type=int, default=20, help="epochs between checkpoints (0: only on stop/end)")
    parser.add_argument("--log_every", type=int, default=10, help="epochs between loss records and progress lines")
    parser.add_argument("--results_uri", default="none", help="s3://bucket/prefix/ for the metrics copy, or none")
    parser.add_argument("--enrollment_model", default=layout.ENROLLMENT_MODEL_FILE, help="file in base_data_path with phi, psi")
    parser.add_argument(
        "--cache_dir", type=Path, default=Path(tempfile.gettempdir()) / "agesweep-inputs",
        help="where s3:// inputs are downloaded",
    )
    return parser.parse_args(argv)


def _flag(value: str) -> bool:
    """``--keep_checkpoint`` alone, or with true/false (the job definition passes a value)."""
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no", "none"):
        return False
    raise argparse.ArgumentTypeError(f"not true or false: {value!r}")


def resolve_slice(start: int, end: int, slice_size: int, array_index: str | None) -> tuple[int, int]:
    """The (start, end) this job trains; an array child i takes the i-th slice_size-wide piece."""
    if slice_size < 0:
        raise InputError(f"slice_size must be >= 0, got {slice_size}")
    if slice_size and array_index not in (None, ""):
        try:
            index = int(array_index)
        except ValueError:
            raise InputError(f"AWS_BATCH_JOB_ARRAY_INDEX is not an integer: {array_index!r}") from None
        start = start + index * slice_size
        end = min(start + slice_size, end)
    if start < 0 or end <= start:
        raise InputError(f"empty slice: start_index {start}, end_index {end}")
    return start, end


class StopSignal:
    """Turns SIGTERM/SIGINT into a flag the epoch loop checks, so the job checkpoints and exits."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignal:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.signum = signum


def _git_revision() -> str | None:
    if os.environ.get("AGESWEEP_GIT_REVISION"):
        return os.environ["AGESWEEP_GIT_REVISION"]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=2
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def lineage(args: argparse.Namespace, run_id: str) -> dict:
    env = {name: os.environ.get(var) or None for name, var in LINEAGE_ENV.items()}
    env["attempt"] = int(env["attempt"]) if env["attempt"] and env["attempt"].isdigit() else env["attempt"]
    parameters = {
        name: (str(value) if isinstance(value, Path) else value)
        for name, value in vars(args).items()
        if name not in ("cache_dir",)
    }
    return {
        "run_id": run_id,
        **env,
        "input": args.base_data_path,
        "parameters": parameters,
        "torch": torch.__version__.split("+")[0],
        "python": platform.python_version(),
        "git_revision": _git_revision(),
    }


def _fingerprint(args: argparse.Namespace, data: SliceData, start: int, end: int) -> dict:
    """What a checkpoint must match to be resumed: same slice, age, seed, step size and shapes."""
    return {
        "start_index": start, "end_index": end, "age": args.age, "seed": args.seed,
        "learning_rate": args.learning_rate, "shape": [data.n_patients, *data.phi.shape],
    }


def _load_checkpoint(path: Path, fingerprint: dict, epochs: int) -> dict | None:
    """The newest valid checkpoint of this (run, age, slice): the current file or the one before.
    One made with other parameters is an error: resuming it would be wrong, replacing it clobbers."""
    found = []
    for candidate in (path, path.with_name(path.name + ".prev")):
        if not candidate.is_file():
            continue
        try:
            state = torch.load(candidate, map_location="cpu", weights_only=True)
            epoch = int(state["epoch"])
            saved_fingerprint = state["fingerprint"]
        except Exception as error:  # noqa: BLE001 - an unreadable checkpoint is skipped, not fatal
            print(f"ignoring unreadable checkpoint {candidate.name}: {error}", flush=True)
            continue
        if saved_fingerprint != fingerprint or epoch > epochs:
            raise InputError(
                f"{candidate} was written with other parameters ({saved_fingerprint}, epoch {epoch}); "
                "use another --run_id or remove it"
            )
        found.append(state)
    return max(found, key=lambda s: s["epoch"]) if found else None


def _slice_names(age: int, start: int, end: int) -> list[str]:
    """Every file a job of this (age, slice) writes into its folder."""
    return [
        layout.checkpoint_name(start, end), layout.checkpoint_name(start, end) + ".prev", layout.pi_name(age, start, end),
        layout.model_name(age, start, end), layout.metrics_name(age, start, end), layout.success_name(start, end),
    ]


def _has_checkpoint(path: Path) -> bool:
    return path.is_file() or path.with_name(path.name + ".prev").is_file()


def _previous_run_dir(args: argparse.Namespace) -> Path | None:
    """The folder of the run this one retries (``--resume_from``), None when there is none."""
    if args.resume_from.lower() == "none" or args.resume_from == args.run_id:
        return None
    return layout.job_dir(args.output_dir, args.resume_from, args.age)


def _reuse_finished(args: argparse.Namespace, out: Path, start: int, end: int) -> int | None:
    """The earlier run's finished outputs of this (age, slice), linked or copied into this run's
    folder and published as this run's; the exit code, or None when it has none to reuse."""
    previous = _previous_run_dir(args)
    if previous is None or not (previous / layout.success_name(start, end)).is_file():
        return None
    age = args.age
    names = [layout.pi_name(age, start, end), layout.model_name(age, start, end)]
    metrics_file = previous / layout.metrics_name(age, start, end)
    if not metrics_file.is_file() or not all((previous / name).is_file() for name in names):
        print(f"not reusing run {args.resume_from}: its outputs of slice {start}-{end} are incomplete", flush=True)
        return None
    metrics = json.loads(metrics_file.read_text())
    wanted = {"epochs": args.epochs, "seed": args.seed, "learning_rate": args.learning_rate, "base_data_path": args.base_data_path}
    used = {**metrics.get("lineage", {}).get("parameters", {}), "epochs": metrics.get("epochs")}
    if any(used.get(name) != value for name, value in wanted.items()):
        print(f"not reusing run {args.resume_from}: it trained with other parameters", flush=True)
        return None
    for name in names:
        link_or_copy(previous / name, out / name)
    metrics.update(run_id=args.run_id, reused_from_run=args.resume_from, wall_time_s=0.0, train_time_s=0.0, cpu_seconds=0.0)
    print(f"reused: run {args.resume_from} already finished age {age} slice {start}-{end}; outputs linked into {out}", flush=True)
    return _publish(args, metrics, out / layout.metrics_name(age, start, end), out / layout.success_name(start, end))


def _already_done(args: argparse.Namespace, out: Path, start: int, end: int) -> int | None:
    """The exit code when this (run, age, slice) needs no training: it succeeded before (skip), or
    the run it retries finished it (reuse); None otherwise. Clears stale temporary files first."""
    marker = out / layout.success_name(start, end)
    if marker.exists():
        print(f"skipped: run {args.run_id} age {args.age} slice {start}-{end} already succeeded ({marker})", flush=True)
        return 0
    for stale in remove_stale_tmp(out, _slice_names(args.age, start, end)):
        print(f"removed {stale.name}, left by a job killed while writing it", flush=True)
    if _has_checkpoint(out / layout.checkpoint_name(start, end)):
        return None
    return _reuse_finished(args, out, start, end)


def _previous_checkpoint(args: argparse.Namespace, fingerprint: dict, start: int, end: int) -> dict | None:
    """The earlier run's checkpoint of this (age, slice), when it was made with these parameters."""
    previous = _previous_run_dir(args)
    if previous is None:
        return None
    try:
        state = _load_checkpoint(previous / layout.checkpoint_name(start, end), fingerprint, args.epochs)
    except InputError as error:
        print(f"not resuming from run {args.resume_from}: {error}", flush=True)
        return None
    if state is not None:
        state["source"] = f"run {args.resume_from}'s {layout.checkpoint_name(start, end)}"
        state["run"] = args.resume_from
    return state


def _remove_checkpoint(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".prev").unlink(missing_ok=True)


def _save_checkpoint(path: Path, state: dict) -> None:
    if path.is_file():
        os.replace(path, path.with_name(path.name + ".prev"))
    save_tensor_file(state, path)


def _pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda requested, but no CUDA device is available")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def _peak_rss_mb() -> float:
    """VmHWM of this process's own address space. ru_maxrss is not used where avoidable: Linux
    carries the parent's peak across fork + exec, so a job started by a large process (local mode,
    a benchmark) would report its parent's memory."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _peak_memory_mb(device: torch.device) -> dict:
    peak = {"peak_rss_mb": _peak_rss_mb()}
    if device.type == "cuda":
        peak["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return peak


def _pi_at(phi: torch.Tensor, lam: torch.Tensor, kappa: torch.Tensor, t: int) -> torch.Tensor:
    """pi [N, D] at time index t alone (the held-out C needs no more), on the CPU."""
    return predict_pi(phi[:, :, t : t + 1], lam[:, :, t : t + 1], kappa)[:, :, 0].cpu()


def _recovery(base: Path, start: int, stop: int, fitted_lambda: torch.Tensor, cap: int) -> dict | None:
    """How well the fit recovers the generating theta, when the inputs are synthetic and say so."""
    path = base / layout.SYNTH_TRUTH_FILE
    if not path.is_file():
        return None
    true_lambda = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["lambda_"]
    if true_lambda.shape[1:] != fitted_lambda.shape[1:] or true_lambda.shape[0] < stop:
        print(f"ignoring {path.name}: lambda {list(true_lambda.shape)} does not match the inputs", flush=True)
        return None
    return recovery(fitted_lambda, true_lambda[start:stop], cap)


def _check_args(args: argparse.Namespace) -> None:
    """Every argument problem before any input is read (InputError: exit 2, one line)."""
    if not layout.AGE_MIN <= args.age <= layout.AGE_MAX:
        raise InputError(f"age {args.age} is outside {layout.AGE_MIN}..{layout.AGE_MAX}")
    if str(args.output_dir).startswith("s3:"):
        raise InputError("--output_dir must be a file system path (EFS); s3:// outputs are not supported")
    for flag, value in (("--run_id", args.run_id), ("--resume_from", args.resume_from)):
        if not value or "/" in value or value in (".", ".."):
            raise InputError(f"{flag} must be a plain folder name, got {value!r}")
    if args.epochs < 0 or args.learning_rate <= 0:
        raise InputError("--epochs must be >= 0 and --learning_rate > 0")
    if args.results_uri.lower() != "none":
        split_s3(args.results_uri)  # a malformed URI fails before training, not after


def _cpu_seconds() -> float:
    """User + system CPU time of this process: what the job actually used, for right-sizing."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


def _publish(args: argparse.Namespace, metrics: dict, metrics_path: Path, marker: Path) -> int:
    """The metrics file, its upload to results_uri, then the success marker (last: a retry redoes the
    rest); then the checkpoint goes, unless ``--keep_checkpoint``."""
    start, end, age = metrics["start_index"], metrics["end_index"], metrics["age"]
    save_text(json.dumps(metrics, indent=2), metrics_path)
    if args.results_uri.lower() != "none":
        try:
            uri = put_json(args.results_uri, lambda prefix: layout.metrics_key(prefix, age, start, end), metrics)
        except Exception as error:  # noqa: BLE001 - any upload failure fails the job; a retry resumes
            print(f"error: uploading metrics to {args.results_uri} failed: {error}", file=sys.stderr, flush=True)
            return 1
        print(f"metrics uploaded to {uri}", flush=True)
    save_text(json.dumps({"metrics": metrics_path.name, "final_loss": metrics["final_loss"]}), marker)
    if not args.keep_checkpoint:  # the success marker keeps the job skippable; the checkpoint is dead weight
        _remove_checkpoint(marker.parent / layout.checkpoint_name(start, end))
    return 0


def _train(
    args: argparse.Namespace,
    epoch: Callable[[], float],
    done: Callable[[], int],
    checkpoint_now: Callable[[], None],
    on_epoch: Callable[[int], None] | None,
) -> int | None:
    """Epochs until ``args.epochs``, checkpointing every ``checkpoint_every``; the signal number when
    SIGTERM/SIGINT stopped it (after a checkpoint), else None."""
    started, first = time.perf_counter(), done()
    with StopSignal() as stop:
        while done() < args.epochs:
            at = done()
            loss = epoch()
            if args.log_every and at % args.log_every == 0:
                per_epoch = (time.perf_counter() - started) / (at + 1 - first)
                print(f"epoch {at}/{args.epochs} loss {loss:.6f} ({per_epoch:.3f} s/epoch)", flush=True)
            if on_epoch:
                on_epoch(done())
            if stop.signum is not None:
                checkpoint_now()
                return int(stop.signum)
            if args.checkpoint_every and done() % args.checkpoint_every == 0 and done() < args.epochs:
                checkpoint_now()
    return None


def run(args: argparse.Namespace, on_epoch: Callable[[int], None] | None = None) -> int:
    """The job. ``on_epoch(done)`` is called after every epoch (tests use it to send signals)."""
    started = time.perf_counter()
    start, end = resolve_slice(args.start_index, args.end_index, args.slice_size, os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX"))
    _check_args(args)
    age = args.age
    out = layout.job_dir(args.output_dir, args.run_id, age)
    marker = out / layout.success_name(start, end)
    checkpoint_path = out / layout.checkpoint_name(start, end)
    finished = _already_done(args, out, start, end)
    if finished is not None:
        return finished

    base = args.base_data_path
    if base.startswith("s3://"):
        base = fetch_inputs(base, [*layout.INPUT_FILES, args.enrollment_model], args.cache_dir, optional=(layout.SYNTH_TRUTH_FILE,))
    data = load_slice(Path(base), start, end, age, args.enrollment_model)
    device = _pick_device(args.device)
    problem = build_problem(data.g, data.refs, data.exit_time_capped, data.y_at_capped_exit, data.phi, device)
    print(
        f"run {args.run_id} age {age} rows {data.start}..{data.stop} ({data.n_patients} patients, "
        f"{len(data.disease_names)} diseases, T={problem.n_times}, K={problem.n_signatures}) "
        f"on {device.type}, {torch.get_num_threads()} threads",
        flush=True,
    )

    fingerprint = _fingerprint(args, data, start, end)
    checkpoint = _load_checkpoint(checkpoint_path, fingerprint, args.epochs) or _previous_checkpoint(args, fingerprint, start, end)
    seeded = initial_parameters(data.g, data.refs, data.y_mean, data.psi, problem.n_times, args.seed)
    cap = age - layout.AGE_OFFSET
    initial_discrimination = heldout_c_index(
        _pi_at(data.phi, seeded["lambda_"], seeded["kappa"], cap), data.exit_time, data.y_at_exit, cap
    )
    initial = checkpoint["params"] if checkpoint else seeded
    del seeded
    # trained in the problem's working layout; checkpoints and outputs hold the standard one
    params = {name: tensor.to(device).requires_grad_(True) for name, tensor in problem.to_working(initial).items()}
    optimizer = Adam(params, lr=args.learning_rate)
    done, history, epoch_losses = 0, [], []
    if checkpoint:
        saved = checkpoint["optimizer"]
        optimizer.load_state_dict({
            "step": saved["step"],
            "exp_avg": problem.to_working(saved["exp_avg"]),
            "exp_avg_sq": problem.to_working(saved["exp_avg_sq"]),
        })
        done, history = int(checkpoint["epoch"]), [list(entry) for entry in checkpoint["loss_history"]]
        epoch_losses = list(checkpoint.get("epoch_losses", []))
        print(f"resuming from epoch {done} ({checkpoint.get('source', checkpoint_path.name)})", flush=True)
    resumed_from = done if checkpoint else None

    def checkpoint_now() -> None:
        state = optimizer.state_dict()
        _save_checkpoint(checkpoint_path, {
            "epoch": done, "fingerprint": fingerprint, "loss_history": history, "epoch_losses": epoch_losses,
            "params": {name: p.cpu() for name, p in problem.to_standard({n: p.detach() for n, p in params.items()}).items()},
            "optimizer": {
                **state, "exp_avg": problem.to_standard(state["exp_avg"]), "exp_avg_sq": problem.to_standard(state["exp_avg_sq"]),
            },
        })

    def epoch() -> float:
        nonlocal done
        loss = float(loss_and_grad(problem, params))
        optimizer.step()
        epoch_losses.append(loss)
        if args.log_every and done % args.log_every == 0:
            history.append([done, loss])
        done += 1
        return loss

    train_started = time.perf_counter()
    signum = _train(args, epoch, lambda: done, checkpoint_now, on_epoch)
    if signum is not None:
        print(f"stopped by signal {signum} after epoch {done}; checkpoint {checkpoint_path}", flush=True)
        return 128 + signum
    if checkpoint is None or done != int(checkpoint["epoch"]):
        checkpoint_now()  # a failure while writing outputs resumes here, not from scratch
    train_seconds = time.perf_counter() - train_started
    optimizer = None  # its state and the gradients (3 x lambda) are not needed for the outputs
    for p in params.values():
        p.grad = None

    with torch.no_grad():
        final_loss = float(total_loss(problem, params))
        prior = problem.prior_weight * float(gp_prior(problem, params["lambda_"], params["gamma"]))
        standard = problem.to_standard({name: p.detach() for name, p in params.items()})
        discrimination = heldout_c_index(
            _pi_at(data.phi, standard["lambda_"], standard["kappa"], cap), data.exit_time, data.y_at_exit, cap
        )
        state = {name: p.cpu() for name, p in standard.items()}
        fit = _recovery(Path(base), start, data.stop, state["lambda_"], cap)
        pi = predict_pi(data.phi, standard["lambda_"], standard["kappa"]).cpu()  # last: the one N x D x T tensor
    if not history or history[-1][0] != done:
        history.append([done, final_loss])

    save_tensor_file(pi, out / layout.pi_name(age, start, end))
    save_tensor_file(
        {
            "model_state_dict": {**state, "phi": data.phi, "psi": data.psi},
            "E": data.exit_time_capped,
            "prevalence_t": data.prevalence,
            "logit_prevalence_t": torch.logit(data.prevalence.clamp(1e-8, 1 - 1e-8)),
            "disease_names": data.disease_names,
            "age": age,
            "start_index": start,
            "end_index": end,
            "rows": [data.start, data.stop],
        },
        out / layout.model_name(age, start, end),
    )
    metrics = {
        "run_id": args.run_id, "age": age, "start_index": start, "end_index": end,
        "n_patients": data.n_patients, "epochs": args.epochs, "final_loss": final_loss,
        "loss_history": history, **discrimination,
        "heldout_c_index_initial": initial_discrimination["heldout_c_index"],
        "loss_per_cell": (final_loss - prior) * problem.n_patients / problem.observed_cells,
        "observed_cells": problem.observed_cells,
        "divergence": divergence([*epoch_losses, final_loss]),
        "recovery": fit,
        "wall_time_s": round(time.perf_counter() - started, 3), "train_time_s": round(train_seconds, 3),
        "cpu_seconds": _cpu_seconds(),
        **_peak_memory_mb(device), "device": device.type, "threads": torch.get_num_threads(),
        "resumed_from_epoch": resumed_from, "resumed_from_run": (checkpoint or {}).get("run"),
        "lineage": lineage(args, args.run_id),
    }
    if _publish(args, metrics, out / layout.metrics_name(age, start, end), marker):
        return 1
    c_text = "n/a" if discrimination["heldout_c_index"] is None else f"{discrimination['heldout_c_index']:.3f}"
    print(
        f"done: final loss {final_loss:.6f}, held-out C {c_text} over {discrimination['heldout_diseases']} diseases, "
        f"{metrics['wall_time_s']:.1f} s, peak RSS {metrics['peak_rss_mb']:.0f} MB -> {out}",
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
