"""Divergence flags and recovery of the generating parameters."""

from __future__ import annotations

import math

import pytest
import torch

from training.diagnostics import RISING_WINDOW, divergence, recovery


def test_a_falling_loss_is_not_suspect():
    assert divergence([10.0 - 0.1 * i for i in range(30)]) == {"suspect": False, "reasons": []}


@pytest.mark.parametrize(
    ("losses", "reason"),
    [
        ([5.0, 4.0, math.nan, 3.0], "non_finite_loss"),
        ([5.0, 4.0, math.inf], "non_finite_loss"),
        ([5.0, 3.0, 6.0], "final_above_initial"),
        ([10.0 - 0.1 * i for i in range(30)] + [7.0 + 0.01 * i for i in range(RISING_WINDOW + 1)], "rising_at_end"),
    ],
)
def test_each_sign_of_divergence_is_named(losses, reason):
    result = divergence(losses)
    assert result["suspect"] and reason in result["reasons"]


def test_recovery_is_the_correlation_of_theta_up_to_the_age():
    gen = torch.Generator().manual_seed(0)
    true = torch.randn(50, 4, 52, generator=gen)
    assert recovery(true.clone(), true, cap=20)["theta_pearson"] == pytest.approx(1.0, abs=1e-12)
    noisy = true + 0.5 * torch.randn(true.shape, generator=gen)
    unrelated = torch.randn(true.shape, generator=gen)
    assert 0.5 < recovery(noisy, true, cap=20)["theta_pearson"] < 0.99
    assert abs(recovery(unrelated, true, cap=20)["theta_pearson"]) < 0.05
    after_the_age = true.clone()
    after_the_age[:, :, 21:] = unrelated[:, :, 21:]  # times after the age do not count
    assert recovery(after_the_age, true, cap=20) == {"theta_pearson": pytest.approx(1.0, abs=1e-12), "times": 21}
