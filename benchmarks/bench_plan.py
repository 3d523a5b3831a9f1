"""Planning speed: 40 ages x 10,000 slices, from the manifest's bytes to the plan dict.

Cases (each the whole validate step the Lambda runs, minus S3 and preflight):
  yaml-list  10,000 explicit {start_index, end_index} slices in YAML (the largest manifest)
  json-list  the same list as JSON
  grid       {size: 1, total: 10000}
  plan-only  plan() from an already validated Manifest (the list form)
Each contiguous equal-width slice list becomes one array job of 10,000 children per age.
The target (issue): < 1 s. Reported: best and median of --repeat runs, bytes, payload size.

Run: .venv/bin/python benchmarks/bench_plan.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agesweep.manifest import parse_manifest  # noqa: E402
from agesweep.plan import plan, validate_and_plan  # noqa: E402
from agesweep.settings import Settings  # noqa: E402

AGES, SLICES, WIDTH = 40, 10_000, 1
RUN_ID = "bench-0123456789ab"
STACK = Settings(bucket_name="bench-bucket", job_queue="agesweep-queue", job_definition="agesweep-job:1")


def manifests() -> dict[str, tuple[str, bytes]]:
    header = f"run_name: bench\nages: {{from: 40, to: {40 + AGES - 1}}}\n"
    yaml_list = header + "slices:\n" + "".join(
        f"  - {{start_index: {i * WIDTH}, end_index: {(i + 1) * WIDTH}}}\n" for i in range(SLICES)
    )
    as_json = json.dumps(
        {
            "run_name": "bench",
            "ages": {"from": 40, "to": 40 + AGES - 1},
            "slices": [{"start_index": i * WIDTH, "end_index": (i + 1) * WIDTH} for i in range(SLICES)],
        }
    )
    grid = header + f"slices: {{size: {WIDTH}, total: {SLICES * WIDTH}}}\n"
    return {
        "yaml-list": ("bench.yaml", yaml_list.encode()),
        "json-list": ("bench.json", as_json.encode()),
        "grid": ("bench.yaml", grid.encode()),
    }


def timed(fn: Callable[[], dict], repeat: int) -> tuple[list[float], dict]:
    times, result = [], {}
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cases = manifests()
    rows = []
    for name, (source, raw) in cases.items():
        times, result = timed(lambda raw=raw, source=source: validate_and_plan(raw, source, STACK, RUN_ID).to_state(), args.repeat)
        rows.append((name, len(raw), times, result))
    source, raw = cases["yaml-list"]
    manifest = parse_manifest(raw, source, STACK)
    times, result = timed(lambda: plan(manifest, STACK, RUN_ID, source_name=source).to_state(), args.repeat)
    rows.append(("plan-only", len(raw), times, result))

    print(f"Planning {AGES} ages x {SLICES:,} slices ({args.repeat} runs each; target < 1 s)")
    print(f"{'case':<10} {'manifest':>10} {'best s':>8} {'median s':>9} {'jobs':>5} {'children':>9} {'payload':>9}")
    for name, size, times, result in rows:
        totals = result["totals"]
        assert totals["jobs"] == AGES and totals["child_jobs"] == AGES * SLICES, totals
        print(
            f"{name:<10} {size / 1024:>8.0f} K {min(times):>8.3f} {statistics.median(times):>9.3f} "
            f"{totals['jobs']:>5} {totals['child_jobs']:>9,} {totals['payload_bytes'] / 1024:>7.1f} K"
        )
    worst = max(statistics.median(t) for _, _, t, _ in rows)
    print(f"slowest median: {worst:.3f} s -> {'OK' if worst < 1 else 'TOO SLOW'} (< 1 s)")


if __name__ == "__main__":
    main()
