"""Held-out discrimination: does pi at the age rank the onsets that happen after it?

The model for age a is fitted on what is known by age a only, so every exit after a is unseen.
For each disease, among patients still at risk after a, Harrell's C of pi[n, d, a - 30] against
the time of a later onset (censoring handled as lifelines.utils.concordance_index does; the tests
hold the two equal), then the mean over diseases with enough onsets. Computed for all diseases
at once with counting by sorting, because lifelines alone costs ~1.3 s of import and a Python
loop per disease: too slow for the 40-ages-on-a-laptop demo.
"""

from __future__ import annotations

import torch

MIN_EVENTS = 5
CELLS_PER_CHUNK = 1 << 23  # int32 counting table of ~32 MB per disease chunk


def concordance_per_disease(
    risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor, eligible: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Harrell's C per column (disease) and the number of events per column.

    A pair (i, j) counts when i has an event at T_i and j leaves later (T_j > T_i, or T_j == T_i
    and j is censored); it is concordant when risk_i > risk_j, half when tied. ``time`` holds
    integer time indices; columns without a comparable pair get NaN.
    """
    n, d = risk.shape
    time = time.long()
    event = event & eligible
    n_levels = int(time.max()) + 1 if n else 1
    # exit key: a censored exit at T counts as later than an event at T; ineligible never counts
    key = torch.where(eligible, time.double() + 0.5 * (~event).double(), torch.full_like(risk, -1.0, dtype=torch.float64))
    scores = torch.full((d,), float("nan"), dtype=torch.float64)
    step = max(1, CELLS_PER_CHUNK // max(1, n_levels * (n + 1)))
    levels = torch.arange(n_levels, dtype=torch.float64)
    for d0 in range(0, d, step):  # chunks of diseases bound memory; each chunk is vectorised
        cols = slice(d0, min(d0 + step, d))
        r = risk[:, cols].T.contiguous()  # [c, n]
        order = r.argsort(dim=1)
        sorted_risk = r.gather(1, order)
        sorted_key = key[:, cols].T.gather(1, order)
        later = torch.zeros(r.shape[0], n_levels, n + 1, dtype=torch.int32)
        later[:, :, 1:] = torch.cumsum((sorted_key[:, None, :] > levels[None, :, None]).int(), dim=2, dtype=torch.int32)
        below = torch.searchsorted(sorted_risk, r, right=False)  # risk_j < risk_i
        upto = torch.searchsorted(sorted_risk, r, right=True)  # risk_j <= risk_i
        rows = torch.arange(r.shape[0])[:, None]
        tau = time[:, cols].T
        is_event = event[:, cols].T
        lower = later[rows, tau, below].double()
        tied = later[rows, tau, upto].double() - lower
        pairs = later[rows, tau, n].double()
        correct = (lower * is_event).sum(dim=1)
        ties = (tied * is_event).sum(dim=1)
        total = (pairs * is_event).sum(dim=1)
        scores[cols] = torch.where(total > 0, (correct + 0.5 * ties) / total.clamp_min(1), float("nan"))
    return scores, event.sum(dim=0)


def heldout_c_index(pi_at_age: torch.Tensor, exit_time: torch.Tensor, y_at_exit: torch.Tensor, cap: int) -> dict:
    """Mean per-disease C of pi [N, D] at time index ``cap`` (the age) for onsets after it;
    ``None`` when no disease has ``MIN_EVENTS`` onsets after the age."""
    eligible = exit_time > cap
    scores, events = concordance_per_disease(pi_at_age.double(), exit_time, y_at_exit, eligible)
    used = (events >= MIN_EVENTS) & ~torch.isnan(scores)
    return {
        "heldout_c_index": float(scores[used].mean()) if used.any() else None,
        "heldout_diseases": int(used.sum()),
        "heldout_events": int(events[used].sum()),
    }
