"""The squared-exponential time kernel shared by the trainer, the generator and the reference."""

from __future__ import annotations

import torch

JITTER = 1e-6


def rbf_kernel(times: int, length_scale: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """exp(-(t-t')^2 / (2 l^2)) on t = 0..times-1, without jitter."""
    t = torch.arange(times, dtype=dtype)
    return torch.exp(-((t[:, None] - t[None, :]) ** 2) / (2.0 * length_scale**2))


def lambda_kernel(times: int) -> torch.Tensor:
    """K_lambda = RBF(l = T/4) + 1e-6 I, in float64 (it is badly conditioned)."""
    return rbf_kernel(times, times / 4.0) + JITTER * torch.eye(times, dtype=torch.float64)
