"""The ranked-classifier imbalance example of Peng et al. (BMVC 2023), Section 3.

A classifier "ranks the positives uniformly at random within its top k": with ``n_pos``
positives among ``n_pos + n_neg`` examples, the positives occupy ``n_pos`` slots drawn without
replacement from ranks ``0 .. k-1``; scores fall strictly with rank. With 10 positives and 990
negatives, k=12 and k=30 give AUROC of about 0.999 and 0.990 (no visible gap) but average
precision of about 0.87 and 0.40 (a large one).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np

from medtl.metrics import Curves, confusion_rates, weighted_curves

DEFAULTS = {"n_pos": 10, "n_neg": 990, "k_a": 12, "k_b": 30, "draws": 200, "seed": 0}
DEFAULT_THRESHOLD = DEFAULTS["k_a"]  # predict the top k_a positive: where A has found every positive
METRICS = ("auroc", "auprc", "auprc_trapezoid")
MAX_CELLS = 20_000_000  # draws x examples; each (draws, N) float64 array is 8 bytes a cell


class SettingError(ValueError):
    """A setting that makes the example undefined.

    ``param`` names the one at fault (``n_pos``, ``n_neg``, ``draws``, or the classifier's own
    ``k``: ``k_a``/``k_b`` from :func:`problems`, ``k`` from :func:`validate`); ``problem`` says
    what is wrong and what is allowed without naming it, so a form can put its own label first.
    """

    def __init__(self, param: str, problem: str):
        super().__init__(f"{param} {problem}")
        self.param, self.problem = param, problem


def problems(n_pos: int, n_neg: int, ks: dict[str, int], draws: int = 1) -> list[SettingError]:
    """Every bad setting of the example, each blamed on its own parameter.

    Args:
        ks: parameter name -> top k of that classifier, e.g. ``{"k_a": 12, "k_b": 30}``.

    The range of k depends on the counts, so the ks are checked only once the counts are valid;
    the number of draws is capped by what one (draws, examples) array may hold.
    """
    found = [
        SettingError(name, f"must be at least 1. Got {v}") for name, v in (("n_pos", n_pos), ("n_neg", n_neg)) if v < 1
    ]
    n = n_pos + n_neg
    if not found:
        found += [
            SettingError(
                name,
                f"must lie between the number of positives ({n_pos:,}) and of all examples ({n:,}): "
                f"the positives have to fit in the top k. Got {k:,}",
            )
            for name, k in ks.items()
            if not n_pos <= k <= n
        ]
    if draws < 1:
        found.append(SettingError("draws", f"must be at least 1. Got {draws}"))
    elif n >= 1 and draws * n > MAX_CELLS:
        found.append(
            SettingError(
                "draws",
                f"must be at most {MAX_CELLS // n:,} for {n:,} examples (draws x examples is at most {MAX_CELLS:,} "
                f"here); use fewer draws or examples. Got {draws:,}",
            )
        )
    return found


def validate(n_pos: int, n_neg: int, k: int, draws: int = 1) -> None:
    """Raise the first of :func:`problems` (a ``ValueError`` naming the bad argument), if any."""
    for e in problems(n_pos, n_neg, {"k": k}, draws):
        raise e


def expected(n_pos: int, n_neg: int, k: int) -> dict[str, float]:
    """Exact expectations over all placements of the positives in the top ``k`` (no sampling).

    AUROC: each positive at rank r outranks every negative below it, and the positives' ranks
    sum to n_pos (k - 1) / 2 on average, so E[AUROC] = 1 - (k - n_pos) / (2 n_neg).
    Average precision: the i-th positive (1-based) at rank r contributes i / (r + 1); r is the i-th
    smallest of n_pos slots drawn from k, with P(r) = C(r, i-1) C(k-1-r, n_pos-i) / C(k, n_pos).
    """
    validate(n_pos, n_neg, k)
    total = comb(k, n_pos)
    ap = 0.0
    for i in range(1, n_pos + 1):
        for r in range(i - 1, k - n_pos + i):
            ap += i / (r + 1) * comb(r, i - 1) * comb(k - 1 - r, n_pos - i) / total
    return {"auroc": 1 - (k - n_pos) / (2 * n_neg), "auprc": ap / n_pos}


@dataclass(frozen=True)
class ToyResult:
    """Scores shared by all draws, labels per draw, and the curves and metrics they give."""

    k: int
    scores: np.ndarray  # (N,), strictly decreasing with rank
    labels: np.ndarray  # (draws, N), 1 where a positive sits
    curves: Curves  # thresholds at ranks 0..k-1, then one group for the all-negative tail
    metrics: dict[str, np.ndarray]  # metric name -> (draws,)

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and standard deviation of each metric over the draws."""
        return {m: {"mean": float(v.mean()), "std": float(v.std())} for m, v in self.metrics.items()}

    def mean_points(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Threshold-averaged ROC and PR points over all draws (Fawcett 2006), one per cut.

        All draws share the scores, so predicting the top N positive is one threshold for every
        draw and the mean TP count at it is the cumulative sum of the mean labels. Returns
        ``(roc, pr)`` in the formats of :func:`medtl.metrics.roc_points` and ``pr_points``
        (``tp``/``fp`` are means over draws).
        """
        n = self.scores.size
        n_pos = int(self.labels[0].sum())
        tp = np.cumsum(self.labels.mean(axis=0, dtype=np.float64))
        fp = np.arange(1, n + 1) - tp
        roc = {
            "fpr": np.r_[0.0, fp / (n - n_pos)],
            "tpr": np.r_[0.0, tp / n_pos],
            "thresholds": np.r_[np.inf, self.scores],
            "tp": np.r_[0.0, tp],
            "fp": np.r_[0.0, fp],
        }
        pr = {
            "precision": np.r_[(tp / np.arange(1, n + 1))[::-1], 1.0],
            "recall": np.r_[(tp / n_pos)[::-1], 0.0],
            "thresholds": np.r_[self.scores[::-1], np.inf],
            "tp": np.r_[tp[::-1], 0.0],
            "fp": np.r_[fp[::-1], 0.0],
        }
        return roc, pr

    def at_cut(self, cut: int, draw: int | None = None) -> dict[str, float]:
        """Confusion counts and rates when predicting the top ``cut`` examples positive.

        Of one draw (``draw``), or of the mean counts over all draws (``None``): all draws share
        the scores, so the top ``cut`` is one threshold for every draw.
        """
        if draw is None:
            tp = float(self.labels[:, :cut].sum(axis=1).mean())  # a mean of whole counts: exact where draws agree
        else:
            tp = int(self.labels[draw, :cut].sum())
        n_pos = int(self.labels[0].sum())
        return confusion_rates(tp, cut - tp, self.scores.size - n_pos - (cut - tp), n_pos - tp)

    def cut_curves(self) -> dict[str, np.ndarray]:
        """Per-cut statistics: predicting the top N positive for N = 1..total.

        All draws share the scores, so each cut is one threshold for every draw and the curves
        can be threshold-averaged (Fawcett 2006): mean and 95% band of each rate per cut. Below
        rank k every draw is the same, so the cuts are 1..k and then all N.
        """
        tpr, fpr, prec = self.curves.tpr, self.curves.fpr, self.curves.precision
        out = {"cut": np.r_[np.arange(1, self.k + 1), self.scores.size][: tpr.shape[1]]}
        for name, a in (("tpr", tpr), ("fpr", fpr), ("precision", prec)):
            out[name] = a.mean(axis=0)
            out[name + "_lo"], out[name + "_hi"] = np.percentile(a, [2.5, 97.5], axis=0)
        return out


def ranked_labels(n_pos: int, n_neg: int, k: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Labels by rank for ``draws`` independent classifiers, shape ``(draws, n_pos + n_neg)``."""
    validate(n_pos, n_neg, k, draws)
    slots = np.argsort(rng.random((draws, k)), axis=1)[:, :n_pos]
    labels = np.zeros((draws, n_pos + n_neg), dtype=np.int8)
    np.put_along_axis(labels, slots, 1, axis=1)
    return labels


def simulate(n_pos: int, n_neg: int, k: int, draws: int = 200, seed: int = 0, stream: int = 0) -> ToyResult:
    """Draw ``draws`` classifiers and compute their curves and metrics in one vectorised pass.

    ``stream`` separates the random streams of classifiers that share a seed (A=0, B=1).
    """
    rng = np.random.default_rng([seed, stream])
    labels = ranked_labels(n_pos, n_neg, k, draws, rng)
    n = n_pos + n_neg
    scores = (n - np.arange(n)) / n
    # Ranks k.. hold only negatives in every draw: one threshold group for them leaves AUROC,
    # AP and the trapezoid unchanged (no positive is gained there) and saves (N - k) columns.
    top = labels[:, :k].astype(np.float64)
    tail = np.full((draws, 1), float(n - k))
    if k < n:
        curves = weighted_curves(np.r_[scores[:k], scores[-1]], np.c_[top, 0 * tail], np.c_[1 - top, tail])
    else:
        curves = weighted_curves(scores, top, 1 - top)
    metrics = {
        "auroc": curves.auroc(),
        "auprc": curves.average_precision(),
        "auprc_trapezoid": curves.auprc_trapezoid(),
    }
    return ToyResult(k, scores, labels, curves, metrics)


def compare(
    n_pos: int = 10, n_neg: int = 990, k_a: int = 12, k_b: int = 30, draws: int = 200, seed: int = 0
) -> dict[str, ToyResult]:
    """Classifiers A (top ``k_a``) and B (top ``k_b``) on independent random streams."""
    return {
        "A": simulate(n_pos, n_neg, k_a, draws, seed, stream=0),
        "B": simulate(n_pos, n_neg, k_b, draws, seed, stream=1),
    }
