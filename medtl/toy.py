"""The ranked-classifier imbalance example of Peng et al. (BMVC 2023), Section 3.

A classifier "ranks the positives uniformly at random within its top k": with ``n_pos``
positives among ``n_pos + n_neg`` examples, the positives occupy ``n_pos`` slots drawn without
replacement from ranks ``0 .. k-1``; scores fall strictly with rank. With 10 positives and 990
negatives, k=12 and k=30 give AUROC of about 0.999 and 0.990 (no visible gap) but average
precision of about 0.87 and 0.40 (a large one).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import ceil, comb

import numpy as np

from medtl.metrics import (
    Curves,
    auroc,
    average_precision,
    check_prevalence,
    confusion_rates,
    pr_points,
    roc_points,
    weighted_curves,
)

DEFAULTS = {"n_pos": 10, "n_neg": 990, "k_a": 12, "k_b": 30, "draws": 200, "seed": 0}
DEFAULT_THRESHOLD = DEFAULTS["k_a"]  # predict the top k_a positive: where A has found every positive
METRICS = ("auroc", "auprc", "auprc_trapezoid")
METRIC_NAMES = {"auroc": "AUROC", "auprc": "AUPRC (average precision)", "auprc_trapezoid": "AUPRC (trapezoid)"}
CONFUSION = ("tp", "fp", "fn", "tn", "sensitivity", "specificity", "precision", "f1")  # at_cut's keys, table order
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


def negative_weight(n_pos: int, n_neg: int, prevalence: float | None) -> float:
    """How much each negative counts so that the set has prevalence ``prevalence``:
    ``(n_pos / n_neg) (1 - prevalence) / prevalence``; 1 for ``None`` or the set's own prevalence."""
    if prevalence is None or abs(prevalence - n_pos / (n_pos + n_neg)) < 1e-12:
        return 1.0
    return n_pos / n_neg * (1 - check_prevalence(prevalence)) / prevalence


def expected(n_pos: int, n_neg: int, k: int, prevalence: float | None = None) -> dict[str, float]:
    """Exact expectations over all placements of the positives in the top ``k`` (no sampling), at the
    set's prevalence or at a deployment ``prevalence`` (each negative counting ``w`` times,
    :func:`negative_weight`).

    AUROC: each positive at rank r outranks every negative below it, and the positives' ranks
    sum to n_pos (k - 1) / 2 on average, so E[AUROC] = 1 - (k - n_pos) / (2 n_neg), whatever ``w``.
    Average precision: the i-th positive (1-based) at rank r has r + 1 - i negatives above it and
    contributes i / (i + w (r + 1 - i)) (i / (r + 1) for w = 1); r is the i-th smallest of n_pos
    slots drawn from k, with P(r) = C(r, i-1) C(k-1-r, n_pos-i) / C(k, n_pos).
    """
    validate(n_pos, n_neg, k)
    w = negative_weight(n_pos, n_neg, prevalence)
    total = comb(k, n_pos)
    ap = 0.0
    for i in range(1, n_pos + 1):
        for r in range(i - 1, k - n_pos + i):
            ap += i / (i + w * (r + 1 - i)) * comb(r, i - 1) * comb(k - 1 - r, n_pos - i) / total
    return {"auroc": 1 - (k - n_pos) / (2 * n_neg), "auprc": ap / n_pos}


MAX_TERMS = 4_000_000  # n_pos x (k - n_pos + 1) terms of the expected AP, per prevalence swept


def expected_over_prevalence(n_pos: int, n_neg: int, k: int, prevalences) -> dict[str, np.ndarray] | None:
    """:func:`expected` at each of ``prevalences`` in one vectorised pass (the probabilities P(r) in
    log space, float64); None when the sum has more than :data:`MAX_TERMS` terms."""
    from scipy.special import gammaln  # scipy loads when the sweep is drawn, not when the page starts

    validate(n_pos, n_neg, k)
    if n_pos * (k - n_pos + 1) > MAX_TERMS:
        return None
    pis = np.asarray(prevalences, dtype=np.float64)
    w = np.array([negative_weight(n_pos, n_neg, float(x)) for x in pis])
    i = np.arange(1, n_pos + 1, dtype=np.float64)[:, None]
    j = np.arange(k - n_pos + 1, dtype=np.float64)[None, :]  # negatives above the i-th positive: r + 1 - i
    r = i - 1 + j

    def lcomb(a, b):
        return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)

    logp = lcomb(r, i - 1) + lcomb(k - 1 - r, n_pos - i) - lcomb(float(k), float(n_pos))
    prob = np.exp(logp)
    ap = np.array([np.sum(prob * i / (i + wx * j)) for wx in w]) / n_pos
    return {"prevalence": pis, "auroc": np.full(pis.shape, 1 - (k - n_pos) / (2 * n_neg)), "auprc": ap}


def expected_at_cut(n_pos: int, n_neg: int, k: int, cut: int, prevalence: float | None = None) -> dict[str, float]:
    """Exact expected sensitivity and precision when the top ``cut`` are predicted positive.

    Up to rank k the true positives among the top ``cut`` are hypergeometric (``cut`` of the k slots,
    n_pos of them positive): E[precision] = sum_t P(t) t / (t + w (cut - t)); past k every positive is found.
    """
    validate(n_pos, n_neg, k)
    if not 1 <= cut <= n_pos + n_neg:
        raise ValueError(f"cut must be between 1 and {n_pos + n_neg:,}. Got {cut}")
    w = negative_weight(n_pos, n_neg, prevalence)
    if cut >= k:
        return {"sensitivity": 1.0, "precision": n_pos / (n_pos + w * (cut - n_pos))}
    total = comb(k, cut)
    ts = range(max(0, cut - (k - n_pos)), min(cut, n_pos) + 1)
    prob = {t: comb(n_pos, t) * comb(k - n_pos, cut - t) / total for t in ts}
    return {
        "sensitivity": sum(p * t for t, p in prob.items()) / n_pos,
        "precision": sum(p * t / (t + w * (cut - t)) for t, p in prob.items()),
    }


def positives_needed(n_pos: int, sensitivity: float) -> int:
    """How many positives a classifier must find for at least ``sensitivity`` (at least one)."""
    if isinstance(sensitivity, bool) or not isinstance(sensitivity, int | float) or not 0 < sensitivity <= 1:
        raise ValueError(f"sensitivity must be a number in (0, 1]. Got {sensitivity!r}")
    return max(1, ceil(sensitivity * n_pos - 1e-9))


def expected_at_sensitivity(
    n_pos: int, n_neg: int, k: int, sensitivity: float, prevalence: float | None = None
) -> dict[str, float]:
    """Exact expectations when a classifier flags images down its ranking until it has found
    ``m`` = ceil(sensitivity n_pos) positives: images flagged, false positives, flagged per true
    positive and per 1,000 patients (at ``prevalence``).

    The m-th positive sits at the m-th smallest of n_pos slots drawn from 1..k, whose mean is
    m (k + 1) / (n_pos + 1); so E[flagged per true positive] = 1 + w (k - n_pos) / (n_pos + 1),
    the same for every target sensitivity.
    """
    validate(n_pos, n_neg, k)
    m = positives_needed(n_pos, sensitivity)
    w = negative_weight(n_pos, n_neg, prevalence)
    pi = n_pos / (n_pos + n_neg) if prevalence is None else prevalence
    flagged = m * (k + 1) / (n_pos + 1)
    fp = flagged - m
    return {
        "found": m,
        "sensitivity": m / n_pos,
        "flagged": flagged,
        "fp": fp,
        "specificity": 1 - fp / n_neg,
        "per_tp": 1 + w * fp / m,
        "per_1000": 1000 * (pi * m / n_pos + (1 - pi) * fp / n_neg),
    }


@dataclass(frozen=True)
class ToyResult:
    """Scores shared by all draws, labels per draw, and the curves and metrics they give."""

    k: int
    scores: np.ndarray  # (N,), strictly decreasing with rank
    labels: np.ndarray  # (draws, N), 1 where a positive sits
    curves: Curves  # thresholds at ranks 0..k-1, then one group for the all-negative tail
    metrics: dict[str, np.ndarray]  # metric name -> (draws,)
    neg_weight: float = 1.0  # how much each negative counts (:meth:`at_prevalence`)
    prevalence: float | None = None  # the deployment prevalence it is at (None: the set's own)

    @property
    def n_pos(self) -> int:
        return int(self.labels[0].sum())

    def at_prevalence(self, prevalence: float | None) -> ToyResult:
        """The same classifiers at a deployment ``prevalence`` (None: the set's own): every negative
        counts :func:`negative_weight` times, so AUROC, sensitivity and specificity stay, and
        precision, AP and the PR curves are their exact values at that prevalence."""
        w = negative_weight(self.n_pos, self.scores.size - self.n_pos, prevalence)
        if w == self.neg_weight:
            return self
        c = self.curves
        curves = Curves(c.thresholds, c.dtp, c.dfp * (w / self.neg_weight))
        metrics = {
            "auroc": curves.auroc(),
            "auprc": curves.average_precision(),
            "auprc_trapezoid": curves.auprc_trapezoid(),
        }
        return replace(self, curves=curves, metrics=metrics, neg_weight=w, prevalence=prevalence)

    def at_sensitivity(self, sensitivity: float, prevalence: float | None = None) -> dict[str, float]:
        """Per draw, flag images down the ranking until ``sensitivity`` is reached; the means over draws
        of images flagged, false positives, flagged per true positive and per 1,000 patients (at
        ``prevalence``, None: the set's own)."""
        n_pos, n = self.n_pos, self.scores.size
        m = positives_needed(n_pos, sensitivity)
        # each row holds n_pos ones: their columns, row by row, in rank order; the m-th is where flagging stops
        ranks = np.flatnonzero(self.labels).reshape(len(self.labels), n_pos) % n
        flagged = ranks[:, m - 1] + 1.0
        fp = flagged - m
        w = negative_weight(n_pos, n - n_pos, prevalence)
        pi = n_pos / n if prevalence is None else prevalence
        return {
            "found": m,
            "sensitivity": m / n_pos,
            "flagged": float(flagged.mean()),
            "fp": float(fp.mean()),
            "specificity": float(1 - fp.mean() / (n - n_pos)),
            "per_tp": float(np.mean(1 + w * fp / m)),
            "per_1000": float(np.mean(1000 * (pi * m / n_pos + (1 - pi) * fp / (n - n_pos)))),
        }

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
        n_pos = self.n_pos
        tp = np.cumsum(self.labels.mean(axis=0, dtype=np.float64))
        fp = np.arange(1, n + 1) - tp
        precision = tp / (tp + self.neg_weight * fp)  # at the deployment prevalence, if one is set
        roc = {
            "fpr": np.r_[0.0, fp / (n - n_pos)],
            "tpr": np.r_[0.0, tp / n_pos],
            "thresholds": np.r_[np.inf, self.scores],
            "tp": np.r_[0.0, tp],
            "fp": np.r_[0.0, fp],
        }
        pr = {
            "precision": np.r_[precision[::-1], 1.0],
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
        n_pos, w = self.n_pos, self.neg_weight
        fp, tn = cut - tp, self.scores.size - n_pos - (cut - tp)
        # counts of images; precision and F1 with each negative counting w times (the deployment prevalence)
        return {**confusion_rates(tp, w * fp, w * tn, n_pos - tp), "fp": fp, "tn": tn}

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


@dataclass(frozen=True)
class Drawn:
    """The ROC and PR curves of some classifiers as plotted: each keyed by its legend line, with its 95% band
    over the draws (``x``, ``lo``, ``hi``) in the formats of :mod:`medtl.plots`."""

    roc: dict[str, dict[str, np.ndarray]]
    pr: dict[str, dict[str, np.ndarray]]
    roc_bands: dict[str, dict[str, np.ndarray]]
    pr_bands: dict[str, dict[str, np.ndarray]]

    def marks(self, cut: int) -> tuple[dict[str, int], dict[str, int]]:
        """The index of the point of each ROC and PR curve where the top ``cut`` are predicted positive
        (ROC points start at the top 0, PR points end there)."""
        return {k: cut for k in self.roc}, {k: v["recall"].size - 1 - cut for k, v in self.pr.items()}


def drawn(res: dict[str, ToyResult], one_draw: bool = False, short: bool = False) -> Drawn:
    """The curves of ``res`` (classifier name -> result, at the prevalence it was set to): the threshold-averaged
    mean over the draws (:meth:`ToyResult.mean_points`), or the first draw's own curves (``one_draw``).

    Each legend line says the classifier, its top k and its AUROC and AP (means over the draws, or draw 1's);
    ``short`` leaves out the top k and the word "mean", a line that fits beside the other plot at projector sizes.
    """
    out = Drawn({}, {}, {}, {})
    for name, r in res.items():
        if one_draw:
            y = r.labels[0]
            a, ap = auroc(y, r.scores), average_precision(y, r.scores, r.prevalence)
            label = f"{name}{'' if short else f' (top {r.k})'}, draw 1 · AUROC {a:.3f} · AP {ap:.3f}"
            roc, pr = roc_points(y, r.scores), pr_points(y, r.scores, r.prevalence)
        else:
            s, mean = r.summary(), "" if short else "mean "
            head = name if short else f"{name} (top {r.k})"
            label = f"{head} · {mean}AUROC {s['auroc']['mean']:.3f} · {mean}AP {s['auprc']['mean']:.3f}"
            roc, pr = r.mean_points()
        cc = r.cut_curves()
        out.roc[label], out.pr[label] = roc, pr
        out.roc_bands[label] = {"x": cc["fpr"], "lo": cc["tpr_lo"], "hi": cc["tpr_hi"]}
        out.pr_bands[label] = {"x": cc["tpr"][::-1], "lo": cc["precision_lo"][::-1], "hi": cc["precision_hi"][::-1]}
    return out


def confusion(res: dict[str, ToyResult], cut: int, draw: int | None = None) -> dict[str, dict[str, float]]:
    """Per classifier, :data:`CONFUSION` when the top ``cut`` are predicted positive (:meth:`ToyResult.at_cut`:
    of draw ``draw``, or the means over the draws)."""
    return {name: {k: c[k] for k in CONFUSION} for name, c in ((n, r.at_cut(cut, draw)) for n, r in res.items())}


def summary_table(res: dict[str, ToyResult]) -> dict[str, dict[str, str]]:
    """Per classifier (``A (top 12)``), each metric's "mean ± std" over the draws, by :data:`METRIC_NAMES`."""
    return {
        f"{name} (top {r.k})": {METRIC_NAMES[m]: f"{s['mean']:.4f} ± {s['std']:.4f}" for m, s in r.summary().items()}
        for name, r in res.items()
    }


def gaps(res: dict[str, ToyResult], better: str = "A", worse: str = "B") -> dict[str, float]:
    """How much higher ``better``'s mean AUROC and mean AP over the draws are than ``worse``'s."""
    return {m: float(np.mean(res[better].metrics[m]) - np.mean(res[worse].metrics[m])) for m in ("auroc", "auprc")}
