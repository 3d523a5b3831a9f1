"""The direct formulation of the loss, written the way the public reference trainer writes it:
full N x D x T pi and masks, and a GP prior looped over signatures and patients.

It is the ground truth the fast path is tested against (tests/training) and the baseline of
benchmarks/bench_trainer.py. Too slow for real use, on purpose.
"""

from __future__ import annotations

import torch

from training.kernels import lambda_kernel
from training.model import HEALTHY_MEAN, PI_MAX, PI_MIN, PRIOR_WEIGHT


def reference_loss(
    lam: torch.Tensor,
    gamma: torch.Tensor,
    kappa: torch.Tensor,
    phi: torch.Tensor,
    g: torch.Tensor,
    refs: torch.Tensor,
    exit_time: torch.Tensor,
    y: torch.Tensor,
    prior_weight: float = PRIOR_WEIGHT,
) -> torch.Tensor:
    """Loss of the issue's model in the dtype of ``lam``; ``exit_time`` already capped at the age."""
    n, k_total, n_times = lam.shape
    dtype = lam.dtype
    theta = torch.softmax(lam, dim=1)
    pi = kappa * torch.einsum("nkt,kdt->ndt", theta, torch.sigmoid(phi.to(dtype)))
    pi = torch.clamp(pi, PI_MIN, PI_MAX)
    time_grid = torch.arange(n_times).reshape(1, 1, -1)
    exits = exit_time.unsqueeze(-1)
    mask_before_event = (time_grid < exits).to(dtype)
    mask_at_event = (time_grid == exits).to(dtype)
    y = y.to(dtype)
    loss_censored = -torch.sum(torch.log(1 - pi) * mask_before_event)
    loss_event = -torch.sum(torch.log(pi) * mask_at_event * y)
    loss_no_event = -torch.sum(torch.log(1 - pi) * mask_at_event * (1 - y))
    data_loss = (loss_censored + loss_event + loss_no_event) / n

    chol = torch.linalg.cholesky(lambda_kernel(n_times).to(dtype))
    g = g.to(dtype)
    prior = lam.new_zeros(())
    for k in range(k_total):
        if k == k_total - 1:
            mean_k = torch.full((n, 1), HEALTHY_MEAN, dtype=dtype)
        else:
            ref_k = refs[k].to(dtype).reshape(1, -1)  # [1, 1] or [1, T]
            mean_k = ref_k + (g @ gamma[:, k]).unsqueeze(1)
        deviations = lam[:, k, :] - mean_k
        for i in range(n):
            dev_i = deviations[i : i + 1].T
            v_i = torch.cholesky_solve(dev_i, chol)
            prior = prior + 0.5 * torch.sum(v_i.T @ dev_i)
    return data_loss + prior_weight * prior / n
