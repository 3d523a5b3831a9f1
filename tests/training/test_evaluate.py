"""The vectorised Harrell's C is lifelines' concordance_index, ties and censoring included."""

from __future__ import annotations

import pytest
import torch
from lifelines.utils import concordance_index

from training.evaluate import concordance_per_disease, heldout_c_index


def test_matches_lifelines_per_disease_with_ties_and_censoring():
    gen = torch.Generator().manual_seed(0)
    n, d = 400, 5
    risk = torch.randint(0, 15, (n, d), generator=gen).double()  # many tied scores
    time = torch.randint(0, 8, (n, d), generator=gen)  # many tied times
    event = torch.rand(n, d, generator=gen) < 0.4
    eligible = torch.rand(n, d, generator=gen) < 0.8
    scores, events = concordance_per_disease(risk, time, event, eligible)
    for j in range(d):
        keep = eligible[:, j]
        expected = concordance_index(time[keep, j].numpy(), -risk[keep, j].numpy(), event[keep, j].numpy())
        assert scores[j].item() == pytest.approx(expected, abs=1e-12)
        assert events[j].item() == int((event[:, j] & keep).sum())


def test_perfect_and_reversed_rankings():
    time = torch.arange(10).repeat(2, 1).T  # [10, 2]
    event = torch.ones(10, 2, dtype=torch.bool)
    risk = torch.stack([-time[:, 0].double(), time[:, 1].double()], dim=1)  # earlier onset = higher risk in column 0
    scores, _ = concordance_per_disease(risk, time, event, torch.ones_like(event))
    assert scores.tolist() == [1.0, 0.0]


def test_heldout_uses_only_onsets_after_the_age():
    n, d, t = 50, 2, 52
    age = 60
    cap = age - 30
    exit_time = torch.full((n, d), cap - 5)  # everyone exits before the age: nothing held out
    pi = torch.rand(n, d, t)
    result = heldout_c_index(pi[:, :, cap], exit_time, torch.ones(n, d, dtype=torch.bool), cap)
    assert result == {"heldout_c_index": None, "heldout_diseases": 0, "heldout_events": 0}
