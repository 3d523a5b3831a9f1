"""Prices and run-time figures behind every cost the project shows: the plan's estimate and the
cost a run actually incurred.

* ``DEFAULT_PRICES`` — dated us-east-1 list prices. Overridden by the ``PRICES_JSON`` env var
  (Settings.prices): a JSON object with any of the ``Prices`` members, e.g.
  ``PRICES_JSON='{"as_of": "2026-01-10", "region": "eu-west-1", "vcpu_hour_spot": 0.02}'``;
  members it leaves out keep the defaults.
* A job is priced as its share of an instance: vCPU-hours at the vCPU price (which includes
  ``gib_per_vcpu_included`` GiB of memory per vCPU, the m6i ratio), memory above that share at
  the extra GiB-hour price (what r6i charges over m6i), GPU-hours at the GPU price.
* ``expected_job_seconds`` — the trainer's time from its benchmark: per-epoch time scales with
  patients x diseases x times (cells).
"""

from __future__ import annotations

import math

from agesweep.contracts import Prices

# Public list prices, us-east-1, as read on the date below.
DEFAULT_PRICES = Prices(
    as_of="2025-06-01",
    region="us-east-1",
    step_functions_per_1000_transitions=0.025,
    vcpu_hour_on_demand=0.048,  # m6i.xlarge $0.192/h for 4 vCPU (16 GiB)
    vcpu_hour_spot=0.0168,  # m6i spot, ~65 % below on-demand (varies by hour and AZ)
    gpu_hour_on_demand=1.006,  # g5.xlarge $1.006/h (1 A10G, 4 vCPU)
    gpu_hour_spot=0.40,
    gib_per_vcpu_included=4.0,  # m6i: 4 GiB per vCPU
    extra_gib_hour_on_demand=0.00375,  # r6i.xlarge $0.252 - m6i.xlarge $0.192 = $0.06/h for 16 GiB more
    extra_gib_hour_spot=0.0013,  # the same ~65 % spot discount
)

SPOT = "spot"
ON_DEMAND = "on-demand"

# The trainer's speed, from benchmarks/bench_trainer.py on the seed's shape: 0.93 s per epoch
# (loss + backward + Adam step) for 10,000 patients x 348 diseases x 52 times on 2 threads.
# Per-epoch time is taken to scale with the cells; fewer than 2 vCPUs slow it in proportion, and
# more are not counted on (the estimate stays on the safe side).
SECONDS_PER_EPOCH_CELL = 0.93 / (10_000 * 348 * 52)
BENCHMARK_THREADS = 2
# The Aladyn inputs' shape; the plan cannot see the input files, so it assumes this one.
DISEASES = 348
TIMES = 52
DEFAULT_EPOCHS = 200  # the job definition's default (Parameters: epochs "200")
JOB_OVERHEAD_S = 30.0  # container start, reading inputs, writing outputs and the metrics JSON


def expected_job_seconds(patients: int, epochs: int, vcpus: float, timeout_s: float) -> float:
    """One job's expected run time: overhead + epochs x cells x the benchmark's per-cell time,
    never above its timeout (Batch stops it there)."""
    slowdown = BENCHMARK_THREADS / min(max(vcpus, 1.0), BENCHMARK_THREADS)
    seconds = JOB_OVERHEAD_S + epochs * patients * DISEASES * TIMES * SECONDS_PER_EPOCH_CELL * slowdown
    return min(seconds, timeout_s)


def extra_memory_gib(vcpus: float, memory_mib: float, prices: Prices) -> float:
    """GiB a job asks beyond what its vCPUs' price includes (0 when within the share)."""
    return max(memory_mib / 1024 - vcpus * prices.gib_per_vcpu_included, 0.0)


def hourly_rate(vcpus: float, memory_mib: float, gpus: float, capacity: str, prices: Prices) -> float:
    """USD per hour of one job holding these resources on spot or on-demand capacity."""
    extra = extra_memory_gib(vcpus, memory_mib, prices)
    if capacity == ON_DEMAND:
        return vcpus * prices.vcpu_hour_on_demand + extra * prices.extra_gib_hour_on_demand + gpus * prices.gpu_hour_on_demand
    return vcpus * prices.vcpu_hour_spot + extra * prices.extra_gib_hour_spot + gpus * prices.gpu_hour_spot


def step_functions_cost(transitions: int, prices: Prices) -> float:
    return transitions / 1000 * prices.step_functions_per_1000_transitions


def money(value: float) -> float:
    """Round a USD figure for display: cents above $1, four significant digits below."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    return round(value, 2) if abs(value) >= 1 else float(f"{value:.4g}")
