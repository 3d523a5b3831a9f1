"""Planning speed: 40 ages x 10,000 slices, and 10,000 points, from the manifest's bytes to the plan.

Cases (each the whole validate step the Lambda runs, minus S3 and preflight):
  yaml-list  10,000 explicit {start_index, end_index} slices in YAML (the largest manifest)
  json-list  the same list as JSON
  grid       {size: 1, total: 10000}
  plan-only  plan() from an already validated Manifest (the list form)
  points     your own job over 100 x 100 axis values = 10,000 points (a Distributed Map's
             items: the state plus the items JSON the validate Lambda writes to S3)
  trainer-points  the trainer over 250 seeds x 40 ages = 10,000 jobs (Distributed, as above)
Each contiguous equal-width slice list becomes one array job of 10,000 children per age.
The targets (issues 1 and 11): < 1 s. Reported: best and median of --repeat runs, bytes, payload size.

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

    own = (b"run_name: points\naxes: {a: {from: 1, to: 100}, b: {from: 1, to: 100}}\n"
           b"job: {container: {image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/tool:1.0', command: [run, Ref::a, Ref::b]}}\n")
    trainer = b"run_name: seeds\nages: {from: 40, to: 79}\nslices: [{start_index: 0, end_index: 10000}]\naxes: {seed: {from: 1, to: 250}}\n"
    point_rows = []
    for name, raw in (("points", own), ("trainer-points", trainer)):
        def whole(raw: bytes = raw) -> dict:
            planned = validate_and_plan(raw, "points.yaml", STACK, RUN_ID)
            return {**planned.to_state(), "items_bytes": len(planned.items_json()), "n": len(planned.items)}
        times, result = timed(whole, args.repeat)
        point_rows.append((name, len(raw), times, result))

    print(f"Planning {AGES} ages x {SLICES:,} slices ({args.repeat} runs each; target < 1 s)")
    print(f"{'case':<10} {'manifest':>10} {'best s':>8} {'median s':>9} {'jobs':>5} {'children':>9} {'payload':>9}")
    for name, size, times, result in rows:
        totals = result["totals"]
        assert totals["jobs"] == AGES and totals["child_jobs"] == AGES * SLICES, totals
        print(
            f"{name:<10} {size / 1024:>8.0f} K {min(times):>8.3f} {statistics.median(times):>9.3f} "
            f"{totals['jobs']:>5} {totals['child_jobs']:>9,} {totals['payload_bytes'] / 1024:>7.1f} K"
        )
    print(f"{'case':<15} {'best s':>8} {'median s':>9} {'items':>6} {'map':>12} {'state':>8} {'items JSON':>11}")
    for name, _, times, result in point_rows:
        assert result["n"] == 10_000 and result["map_mode"] == "DISTRIBUTED", result["totals"]
        print(
            f"{name:<15} {min(times):>8.3f} {statistics.median(times):>9.3f} {result['n']:>6,} {result['map_mode']:>12} "
            f"{result['totals']['payload_bytes'] / 1024:>6.1f} K {result['items_bytes'] / 1024 / 1024:>9.1f} M"
        )
    worst = max(statistics.median(t) for _, _, t, _ in rows + point_rows)
    print(f"slowest median: {worst:.3f} s -> {'OK' if worst < 1 else 'TOO SLOW'} (< 1 s)")


if __name__ == "__main__":
    main()
