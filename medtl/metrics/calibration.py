"""Calibration of predicted probabilities: Brier score, expected calibration error, reliability bins,
and temperature scaling fitted on the validation split.

- Brier score: the mean of ``(p - y)^2`` (``sklearn.metrics.brier_score_loss``).
- ECE: ``sum_b (n_b / N) |mean(y in b) - mean(p in b)|`` over 15 bins of P(positive); equal-width bins
  ``(lo, hi]`` on [0, 1] (0 in the first), as torchmetrics' ``BinaryCalibrationError(norm="l1")``,
  or equal-mass bins (edges at the quantiles of the scores, as ``sklearn.calibration.calibration_curve``'s
  ``strategy="quantile"``).
- Temperature scaling (Guo et al. 2017, "On calibration of modern neural networks"): one scalar T > 0,
  fitted on validation by minimising the log loss of ``sigmoid(logit(p) / T)`` (softmax of ``log p / T``
  for a multi-class task); it keeps the order of the scores, so AUROC and AP do not change.

Weighted forms (rows of weights, for the bootstrap and a deployment prevalence) keep their bins fixed
to those of the scores as given.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "N_BINS",
    "apply_temperature",
    "bin_index",
    "brier",
    "ece",
    "fit_temperature",
    "log_loss",
    "reliability",
    "weighted_brier",
    "weighted_ece",
]

N_BINS = 15
STRATEGIES = ("uniform", "quantile")
_T_RANGE = (0.05, 20.0)
_MAX_SCALED = 35.0  # |logit| / T beyond this rounds sigmoid to 1.0 in float64: ties a monotone map must not add


def _probabilities(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_prob, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_prob must have the same length. Got {y.size} and {p.size}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"y_true must hold only 0 and 1. Got values {np.unique(y)[:5].tolist()}")
    if not np.isfinite(p).all() or p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError("y_prob must hold probabilities in [0, 1] (calibration needs probabilities, not scores)")
    if not y.size:
        raise ValueError("calibration needs at least one image")
    return y, p


def bin_index(y_prob, n_bins: int = N_BINS, strategy: str = "uniform") -> np.ndarray:
    """The bin of each probability: equal-width ``(lo, hi]`` bins (0 in the first) or equal-mass bins."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}. Got {strategy!r}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a whole number of at least 1. Got {n_bins!r}")
    p = np.asarray(y_prob, dtype=np.float64).ravel()
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
    return np.searchsorted(edges[1:-1], p, side="left")


def _onehot(idx: np.ndarray, n_bins: int) -> np.ndarray:
    out = np.zeros((idx.size, n_bins))
    out[np.arange(idx.size), idx] = 1.0
    return out


def weighted_ece(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, n_bins: int = N_BINS, strategy: str = "uniform"
) -> np.ndarray:
    """ECE under each row of weights ``w`` (B, N): ``sum_b |sum_b w y - sum_b w p| / sum w``."""
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    onehot = _onehot(bin_index(p, n_bins, strategy), n_bins)
    gap = (w * (np.asarray(y) - np.asarray(p))) @ onehot  # per bin: sum of w*y minus sum of w*p
    return np.abs(gap).sum(axis=1) / w.sum(axis=1)


def weighted_brier(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Brier score under each row of weights ``w`` (B, N)."""
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    return (w @ (np.asarray(p) - np.asarray(y)) ** 2) / w.sum(axis=1)


def brier(y_true, y_prob) -> float:
    """Mean squared difference between P(positive) and the 0/1 label (``brier_score_loss``)."""
    y, p = _probabilities(y_true, y_prob)
    return float(np.mean((p - y) ** 2))


def ece(y_true, y_prob, n_bins: int = N_BINS, strategy: str = "uniform") -> float:
    """Expected calibration error on P(positive) (torchmetrics' binary L1 calibration error for ``uniform``)."""
    y, p = _probabilities(y_true, y_prob)
    return float(weighted_ece(y, p, np.ones((1, y.size)), n_bins, strategy)[0])


def reliability(y_true, y_prob, n_bins: int = N_BINS, strategy: str = "uniform") -> dict[str, np.ndarray]:
    """The reliability diagram's points: per non-empty bin the mean predicted probability, the share of
    positives and the number of images (``calibration_curve``'s ``prob_pred``, ``prob_true``, plus counts)."""
    y, p = _probabilities(y_true, y_prob)
    idx = bin_index(p, n_bins, strategy)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    keep = count > 0
    return {
        "mean_predicted": (np.bincount(idx, p, n_bins) / np.maximum(count, 1))[keep],
        "fraction_positive": (np.bincount(idx, y, n_bins) / np.maximum(count, 1))[keep],
        "count": count[keep],
    }


def log_loss(y_true, y_prob, exclusive: bool = False) -> float:
    """Mean negative log-likelihood (``sklearn.metrics.log_loss``; probabilities clipped to [eps, 1 - eps]).

    ``y_prob`` ``(N,)`` or ``(N, L)`` of independent sigmoids (the mean over labels and images), or with
    ``exclusive`` the ``(N, K)`` rows of a softmax with one-hot ``y_true``."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.clip(np.asarray(y_prob, dtype=np.float64), np.finfo(np.float64).eps, 1 - np.finfo(np.float64).eps)
    if exclusive:
        return float(-np.mean(np.sum(y * np.log(p), axis=1)))
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.0, 1.0)  # scores a hair outside [0, 1] (rounding) read as the nearest probability
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)  # 0 -> -inf, 1 -> inf: kept at the ends by the scaling


def apply_temperature(y_prob, temperature: float, exclusive: bool = False) -> np.ndarray:
    """Probabilities scaled by ``temperature``: ``sigmoid(logit(p) / T)``, or ``softmax(log p / T)``."""
    from scipy.special import expit, softmax  # scipy where it computes: `runs` and the CLI start 0.8 s faster

    p = np.asarray(y_prob, dtype=np.float64)
    if exclusive:
        with np.errstate(divide="ignore"):
            return softmax(np.log(p) / temperature, axis=1)
    return expit(_logit(p) / temperature)


def fit_temperature(y_val, p_val, exclusive: bool = False) -> float:
    """The temperature that minimises the validation log loss (bounded search on log T in [0.05, 20]).

    T stays 1 unless it lowers the validation log loss. Below 1 it stays at or above ``max |logit| / 35``,
    so that sharpening never rounds a probability to 1.0 (a new tie would change AUROC)."""
    from scipy.optimize import minimize_scalar
    from scipy.special import expit, log_softmax

    y = np.asarray(y_val, dtype=np.float64)
    p = np.asarray(p_val, dtype=np.float64)
    z = np.log(np.clip(p, 1e-300, 1)) if exclusive else _logit(p)
    finite = np.abs(z[np.isfinite(z)])
    t_lo = max(_T_RANGE[0], min(1.0, float(finite.max()) / _MAX_SCALED if finite.size else 0.0))

    def loss(log_t: float) -> float:
        t = float(np.exp(log_t))
        if exclusive:
            lp = log_softmax(z / t, axis=1)
            with np.errstate(invalid="ignore"):  # 0 x log 0 of classes an image is not
                return float(-np.mean(np.sum(np.where(y > 0, y * lp, 0.0), axis=1)))
        return log_loss(y, expit(z / t))

    best = minimize_scalar(loss, bounds=(np.log(t_lo), np.log(_T_RANGE[1])), method="bounded")
    return float(np.exp(best.x)) if loss(best.x) < loss(0.0) else 1.0
