"""File names of the trainer's inputs and outputs: one place, because the synthetic generator,
the trainer, the tests and collation (docs/internals.md) must agree on every one of them."""

from __future__ import annotations

from pathlib import Path

Y_FILE = "Y_tensor.pt"
E_FILE = "E_matrix.pt"
G_FILE = "G_matrix.pt"
ESSENTIALS_FILE = "model_essentials.pt"
REFERENCES_FILE = "reference_trajectories.pt"
COVARIATES_FILE = "baselinagefamh.csv"
ENROLLMENT_MODEL_FILE = "enrollment_model_W0.0001_fulldata_sexspecific.pt"

INPUT_FILES = (Y_FILE, E_FILE, G_FILE, ESSENTIALS_FILE, REFERENCES_FILE, COVARIATES_FILE)
SYNTH_TRUTH_FILE = "synthetic_truth.pt"  # optional: the generating parameters (training.synth writes it)

AGE_MIN, AGE_MAX = 40, 79
AGE_OFFSET = 30  # time index t = age - 30


def job_dir(output_dir: Path, run_id: str, age: int) -> Path:
    """The one folder a (run, age) job may write into."""
    return Path(output_dir) / run_id / f"age_{age}"


def pi_name(age: int, start: int, end: int) -> str:
    return f"pi_enroll_fixedphi_age_{age}_sex_{start}_{end}.pt"


def model_name(age: int, start: int, end: int) -> str:
    return f"model_enroll_fixedphi_age_{age}_sex_{start}_{end}.pt"


def metrics_name(age: int, start: int, end: int) -> str:
    return f"metrics_age_{age}_{start}_{end}.json"


def success_name(start: int, end: int) -> str:
    return f"_SUCCESS_{start}_{end}"


def checkpoint_name(start: int, end: int) -> str:
    return f"checkpoint_{start}_{end}.pt"


def metrics_key(prefix: str, age: int, start: int, end: int) -> str:
    """S3 key of the metrics copy under a ``--results_uri`` prefix (collation reads these)."""
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    return f"{prefix}metrics/age_{age}/{metrics_name(age, start, end)}"
