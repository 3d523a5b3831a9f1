"""Can this fit be trusted? Divergence flags and, on synthetic data, recovery of the truth.

Both go into the metrics JSON (docs/training.md, "Metrics"), so a sweep of 40 ages can be
screened without opening 40 loss curves.
"""

from __future__ import annotations

import math

import torch

RISING_WINDOW = 10  # epochs over which a net rise of the loss counts as diverging
RECOVERY_CHUNK = 1024  # patients per chunk of the correlation (bounds its float64 temporaries)


def divergence(losses: list[float]) -> dict:
    """``{"suspect": bool, "reasons": [...]}`` for the per-epoch losses (the last one the final
    loss). Reasons: ``non_finite_loss`` (NaN or inf anywhere), ``final_above_initial``,
    ``rising_at_end`` (the final loss above the loss ``RISING_WINDOW`` epochs before it)."""
    reasons = []
    if not all(math.isfinite(loss) for loss in losses):
        reasons.append("non_finite_loss")
    if len(losses) >= 2 and losses[-1] > losses[0]:
        reasons.append("final_above_initial")
    if len(losses) > RISING_WINDOW and losses[-1] > losses[-1 - RISING_WINDOW]:
        reasons.append("rising_at_end")
    return {"suspect": bool(reasons), "reasons": reasons}


def recovery(fitted_lambda: torch.Tensor, true_lambda: torch.Tensor, cap: int) -> dict:
    """Pearson correlation of the fitted and the true theta = softmax_k(lambda) over every
    (patient, signature, time <= cap): the times the data up to the age can inform."""
    sums = torch.zeros(5, dtype=torch.float64)  # sum a, sum b, sum a^2, sum b^2, sum ab
    count = 0
    for n0 in range(0, fitted_lambda.shape[0], RECOVERY_CHUNK):
        a = torch.softmax(fitted_lambda[n0 : n0 + RECOVERY_CHUNK, :, : cap + 1].double(), dim=1).reshape(-1)
        b = torch.softmax(true_lambda[n0 : n0 + RECOVERY_CHUNK, :, : cap + 1].double(), dim=1).reshape(-1)
        sums += torch.stack([a.sum(), b.sum(), (a * a).sum(), (b * b).sum(), (a * b).sum()])
        count += a.numel()
    mean_a, mean_b = sums[0] / count, sums[1] / count
    cov = sums[4] / count - mean_a * mean_b
    var_a, var_b = sums[2] / count - mean_a**2, sums[3] / count - mean_b**2
    r = float(cov / (var_a * var_b).sqrt()) if var_a > 0 and var_b > 0 else None
    return {"theta_pearson": r, "times": cap + 1}
