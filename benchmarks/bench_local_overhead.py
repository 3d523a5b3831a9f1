"""Local mode's orchestration cost, measured against the seed's way of running the same jobs.

1. The same 40 per-age training commands (ages 40..79, the demo manifest's settings) run by a
   plain `xargs -P N` loop versus `agesweep local --workers N` (moto server, real ASL, real
   Lambdas, the same commands as local processes). Reported: both wall times and their ratio.
2. A 40-age × 250-slice array sweep (10,000 child jobs) with a trivial job command, through the
   same state machine: Step Functions history events and wall time.

Run: .venv/bin/python benchmarks/bench_local_overhead.py [--workers N] [--skip-array]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agesweep.local.cloud import LocalCloud  # noqa: E402
from agesweep.local.session import run_manifest  # noqa: E402

DEMO = ROOT / "events" / "manifests" / "demo.yaml"


def trainer_commands(stack: LocalCloud, plan: dict, run_id: str) -> list[list[str]]:
    """The commands local mode runs, rebuilt from the template's job definition (Ref:: filled),
    for another run id (so nothing is skipped as already done); metrics still go to the bucket."""
    container = stack.spec.job_definition.container_properties
    container_paths = [mount["ContainerPath"] for mount in container.get("MountPoints") or []]
    commands = []
    for item in plan["items"]:
        params = {**stack.spec.job_definition.parameters, **item["parameters"], "run_id": run_id,
                  "results_uri": f"s3://{stack.bucket}/runs/{run_id}/"}
        parts = []
        for part in container["Command"]:
            for key, value in params.items():
                part = part.replace(f"Ref::{key}", value)
            parts.append(part)
        commands.append(stack.host_command(parts, container_paths))
    return commands


def bench_xargs_vs_local(workers: int, workdir: Path, data_dir: Path) -> dict:
    with LocalCloud(workdir=workdir / "local", data_dir=data_dir, workers=workers) as stack:
        started, cpu_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        result = run_manifest(stack, DEMO)
        local_wall = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        controller_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
        first_start = min(row.started_at for row in result.rows)
        last_stop = max(row.stopped_at for row in result.rows)
        wall_clock_start = time.time() - local_wall
        assert result.exit_code == 0, (result.status, result.error, result.cause)
        # the seed's way: the same 40 commands in a plain `xargs -P N` loop, against the same
        # (now idle) endpoint so their metrics upload exactly as in local mode
        commands = trainer_commands(stack, result.plan, run_id="xargs-baseline")
        script = "\n".join(shlex.join(cmd) for cmd in commands) + "\n"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        subprocess.run(["xargs", "-P", str(workers), "-d", "\n", "-I{}", "sh", "-c", "{}"], input=script, text=True,
                       env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        xargs_wall = time.perf_counter() - started
    return {
        "jobs": len(commands),
        "workers": workers,
        "xargs_wall_s": round(xargs_wall, 2),
        "agesweep_local_wall_s": round(local_wall, 2),
        "ratio_local_over_xargs": round(local_wall / xargs_wall, 3),
        "controller_cpu_s": round(controller_cpu, 1),  # moto server + interpreter + in-process Lambdas
        "put_to_first_job_s": round(first_start - wall_clock_start, 2),
        "jobs_span_s": round(last_stop - first_start, 2),
        "last_job_to_done_s": round(wall_clock_start + local_wall - last_stop, 2),
        "history_events": result.history_events,
    }


def bench_array_sweep(workers: int, workdir: Path, data_dir: Path) -> dict:
    with LocalCloud(workdir=workdir / "array", data_dir=data_dir, workers=workers) as stack:
        batch = stack.client("batch")
        batch.register_job_definition(
            jobDefinitionName="trivial", type="container",
            containerProperties={"image": "local", "command": ["true"], "resourceRequirements": [
                {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]},
        )
        manifest = workdir / "array-sweep.yaml"
        manifest.write_text(
            "schema_version: 1\nrun_name: array-sweep\nages: {from: 40, to: 79}\n"
            "slices: {size: 40, total: 10000}\ninput: /data/input\noutput: /data/output\n"
            "job: {definition: trivial}\nmax_concurrency: 40\n", encoding="utf-8")
        started = time.perf_counter()
        result = run_manifest(stack, manifest, poll_s=2.0)
        wall = time.perf_counter() - started
        children = sum(row.array_size for row in result.rows)
        return {
            "ages": len(result.rows), "child_jobs": children, "status": result.status, "error": result.error,
            "history_events": result.history_events, "wall_s": round(wall, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-array", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agesweep-bench-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "data"
        from training import synth

        synth.generate(data_dir / "input")
        report = {"xargs_vs_local": bench_xargs_vs_local(args.workers, workdir, data_dir)}
        if not args.skip_array:
            report["array_sweep_40x250"] = bench_array_sweep(args.workers, workdir, data_dir)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
