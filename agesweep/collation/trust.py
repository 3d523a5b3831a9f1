"""Training you can trust: whether a job's metrics say its training went wrong, and why.

The trainer writes its own verdict (``divergence: {suspect, reasons}``); collation adds the checks
it can make on any metrics JSON, so a job from an older trainer is judged too.
"""

from __future__ import annotations

import math

from agesweep.contracts import JobMetrics

RISING_POINTS = 3  # recorded losses, each above the one before, at the end of the curve
C_INDEX_DROP = 0.01  # a final c-index this far below the untrained model's is worse, not noise


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _curve_reasons(metrics: JobMetrics) -> list[str]:
    history = [(epoch, math.nan if loss is None else loss) for epoch, loss in metrics.loss_history or []]
    reasons = []
    broken = [epoch for epoch, loss in history if not math.isfinite(loss)]
    if broken:
        reasons.append(f"loss is not finite from epoch {broken[0]}")
    finite = [(epoch, loss) for epoch, loss in history if math.isfinite(loss)]
    final = metrics.final_loss
    if finite and _finite(final) and final is not None and final > finite[0][1]:
        reasons.append(f"final loss {final:.4g} is above the initial {finite[0][1]:.4g} (epoch {finite[0][0]})")
    tail = finite[-(RISING_POINTS + 1):]
    if len(tail) == RISING_POINTS + 1 and all(b[1] > a[1] for a, b in zip(tail, tail[1:], strict=False)):
        reasons.append(f"loss rising over the last {RISING_POINTS} recorded epochs ({tail[0][1]:.4g} to {tail[-1][1]:.4g})")
    return reasons


def suspect_reasons(metrics: JobMetrics) -> list[str]:
    """Why this job's training looks wrong (empty when it does not): the trainer's own reasons,
    a non-finite loss, a final loss above the first, a rising tail, a c-index that fell."""
    reasons: list[str] = []
    verdict = metrics.divergence
    if verdict is not None and verdict.suspect:
        reasons.extend(verdict.reasons or ["the trainer flagged its loss curve"])
    final = metrics.final_loss
    if final is not None and not math.isfinite(final):
        reasons.append(f"final loss is {final}")
    reasons.extend(_curve_reasons(metrics))
    start, end = metrics.heldout_c_index_initial, metrics.heldout_c_index
    if _finite(start) and _finite(end) and start is not None and end is not None and end < start - C_INDEX_DROP:
        reasons.append(f"held-out c-index fell from {start:.3f} (untrained) to {end:.3f}")
    return list(dict.fromkeys(reasons))  # the trainer and collation may say the same thing
