"""Decision curves (Vickers & Elkin 2006): the net benefit of acting on a model's probabilities.

At a threshold probability ``pt`` (treat when P(positive) >= pt), net benefit is
``TP / N - FP / N * pt / (1 - pt)``: true positives gained, minus false positives weighed by the odds
at which a clinician would be indifferent. *Treat all* is ``prev - (1 - prev) * pt / (1 - pt)``, *treat
none* 0. At a deployment prevalence the negatives are re-weighted (:func:`medtl.metrics.negative_weight`),
which is the ``prevalence=`` argument of the ``dcurves`` package (``dca``) for case-control data.
The probabilities should be calibrated (:mod:`medtl.metrics.calibration`): the threshold is read as a risk.
"""

from __future__ import annotations

import numpy as np

from medtl.metrics.curves import check_binary, negative_weight

__all__ = ["THRESHOLDS", "net_benefit"]

THRESHOLDS = np.round(np.arange(0.01, 1.0, 0.01), 2)


def net_benefit(y_true, y_prob, thresholds=None, prevalence: float | None = None) -> dict[str, np.ndarray]:
    """Net benefit of the model, of treating all and of treating none at each threshold probability.

    Returns:
        ``{"threshold", "model", "treat_all", "treat_none"}``, arrays of the thresholds' length.
    """
    y, p = check_binary(y_true, y_prob)
    t = THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if t.size and (t.min() < 0 or t.max() >= 1):
        raise ValueError(f"threshold probabilities must be in [0, 1). Got {t.min():g} to {t.max():g}")
    w = np.where(y == 1, 1.0, negative_weight(y, prevalence))
    total = w.sum()
    flagged = p[None, :] >= t[:, None]  # (T, N)
    tp = (flagged * (w * (y == 1))).sum(axis=1) / total
    fp = (flagged * (w * (y == 0))).sum(axis=1) / total
    odds = t / (1 - t)
    prev = float((w * (y == 1)).sum() / total)
    return {
        "threshold": t,
        "model": tp - fp * odds,
        "treat_all": prev - (1 - prev) * odds,
        "treat_none": np.zeros_like(t),
    }
