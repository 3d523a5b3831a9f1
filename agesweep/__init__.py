"""agesweep: run per-age training sweeps on AWS Batch through Step Functions."""

__version__ = "0.1.0"
