"""Metrics as records: what each number is, which way is better, what it needs, how it is computed.

Every reader of test metrics — ``metrics.json`` (:func:`evaluate`), the runs table and the Compare page's
columns and axes, the truncation figure, a study's comparisons, tables and report, ``runs show``,
``compare`` and ``study show`` — goes through :data:`METRICS`. A record's ``weighted`` function computes
the metric for each row of a weight matrix ``(B, N)`` over the test images: a row of ones is the value,
stratified resampling counts are the bootstrap (shared by every metric and, in :mod:`medtl.stats`, by the
two classifiers of a paired comparison), and negatives weighted by :func:`~medtl.metrics.negative_weight`
give a metric at a deployment prevalence. Adding a metric is one record here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from medtl.metrics import calibration as C
from medtl.metrics import operating as O
from medtl.metrics.curves import (
    _check_bootstrap,
    _interval,
    negative_weight,
    stratified_weights,
    weighted_curves,
)

__all__ = [
    "METRICS",
    "NO_OPERATING_POINT",
    "SPECIFICITY",
    "Context",
    "Metric",
    "context",
    "evaluate",
    "get",
    "intervals",
    "keys",
    "no_operating_point",
    "register",
]

SPECIFICITY = 0.9  # the fixed specificity of ``sens_at_spec`` (as papers report it)
NO_OPERATING_POINT = "operating point not available: re-run or `python -m medtl runs reevaluate {run}`"


@dataclass(frozen=True)
class Context:
    """What a metric needs besides the test labels and scores: the threshold chosen on validation
    (None: no validation predictions), the fixed specificity, the calibration bins."""

    threshold: float | None = None
    specificity: float = SPECIFICITY
    n_bins: int = C.N_BINS


Weighted = Callable[[np.ndarray, np.ndarray, np.ndarray, Context], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """One metric.

    Attributes:
        key: its place under ``metrics.json``'s ``test`` (``auroc``, ``op.ppv``); ``test.<key>`` is its
            column in the runs table and ``<key>_ci`` its 95% interval.
        label: how pages, tables and sentences name it; ``short``: a table header.
        higher_is_better: the direction (sorting, "best" and the sign of a gain).
        needs: ``ranks`` (threshold-free), ``threshold`` (an operating point chosen on validation) or
            ``probabilities`` (calibrated P(positive)).
        weighted: the metric per row of weights ``(B, N)``: ``f(y, scores, w, ctx) -> (B,)``.
        definition: the reference implementation it equals.
        prevalence: whether it depends on the prevalence (then a deployment prevalence re-weights it).
        interval: whether it gets a bootstrap interval; table: whether the runs table shows it.
    """

    key: str
    label: str
    short: str
    higher_is_better: bool
    needs: Literal["ranks", "threshold", "probabilities"]
    weighted: Weighted
    definition: str
    value_range: tuple[float, float] = (0.0, 1.0)
    prevalence: bool = False
    interval: bool = True
    fmt: str = ".3f"
    table: bool = True

    @property
    def column(self) -> str:
        return f"test.{self.key}"

    def format(self, value) -> str:
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            return "—"
        return format(float(value), self.fmt)

    def value(self, y, s, ctx: Context = Context()) -> float:
        """The metric on these labels and scores (one weight per image)."""
        y, s = np.asarray(y), np.asarray(s, dtype=np.float64)
        return float(self.weighted(y, s, np.ones((1, y.size)), ctx)[0])


def _curves(y, s, w):
    return weighted_curves(s, w * (y == 1), w * (y == 0))


def _at_threshold(name: str) -> Weighted:
    def f(y, s, w, ctx):
        if ctx.threshold is None:
            return np.full(np.atleast_2d(w).shape[0], np.nan)
        return O.rates(*O.confusion_weighted(y, s, w, ctx.threshold))[name]

    return f


def _op(name: str, label: str, short: str, definition: str, prevalence: bool, fmt: str = ".3f", **kw) -> Metric:
    return Metric(
        f"op.{name}",
        label,
        short,
        True,
        "threshold",
        _at_threshold(name),
        definition,
        prevalence=prevalence,
        fmt=fmt,
        **kw,
    )


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric(
            "auroc",
            "AUROC",
            "AUROC",
            True,
            "ranks",
            lambda y, s, w, c: _curves(y, s, w).auroc(),
            "sklearn.metrics.roc_auc_score",
        ),
        Metric(
            "auprc",
            "AUPRC (AP)",
            "AUPRC",
            True,
            "ranks",
            lambda y, s, w, c: _curves(y, s, w).average_precision(),
            "sklearn.metrics.average_precision_score",
            prevalence=True,
        ),
        Metric(
            "auprc_trapezoid",
            "AUPRC (trapezoid)",
            "AUPRC (trap.)",
            True,
            "ranks",
            lambda y, s, w, c: _curves(y, s, w).auprc_trapezoid(),
            "sklearn.metrics.auc(recall, precision)",
            prevalence=True,
            interval=False,
            table=False,
        ),
        Metric(
            "sens_at_spec",
            f"sensitivity at {SPECIFICITY:.0%} specificity (test ROC: optimistic)",
            f"sens@{SPECIFICITY:.0%} spec (test ROC)",
            True,
            "ranks",
            lambda y, s, w, c: O.weighted_sensitivity_at_specificity(y, s, w, c.specificity),
            "torchmetrics BinarySensitivityAtSpecificity",
            table=False,
        ),
        _op("sensitivity", "sensitivity at the operating point", "sensitivity", "sklearn.metrics.recall_score", False),
        _op("specificity", "specificity at the operating point", "specificity", "recall_score of the negatives", False),
        _op("ppv", "PPV (precision) at the operating point", "PPV", "sklearn.metrics.precision_score", True),
        _op("npv", "NPV at the operating point", "NPV", "precision_score of the negatives", True, table=False),
        _op("f1", "F1 at the operating point", "F1", "sklearn.metrics.f1_score", True, table=False),
        _op(
            "flagged_per_1000",
            "positives flagged per 1,000 patients",
            "flagged / 1000",
            "1000 x (TP + FP) / N",
            True,
            fmt=".0f",
            value_range=(0.0, 1000.0),
        ),
        Metric(
            "brier",
            "Brier score",
            "Brier",
            False,
            "probabilities",
            lambda y, s, w, c: C.weighted_brier(y, s, w),
            "sklearn.metrics.brier_score_loss",
        ),
        Metric(
            "ece",
            f"ECE ({C.N_BINS} equal-width bins)",
            "ECE",
            False,
            "probabilities",
            lambda y, s, w, c: C.weighted_ece(y, s, w, c.n_bins),
            "torchmetrics BinaryCalibrationError(norm='l1')",
        ),
    )
}


def register(metric: Metric) -> Metric:
    """Add (or replace) a record: every reader lists it from then on. Returns it."""
    METRICS[metric.key] = metric
    return metric


def keys(needs: str | None = None) -> list[str]:
    """The records' keys, in order; ``needs``: only those that need ``ranks``, ``threshold`` or ``probabilities``."""
    return [k for k, m in METRICS.items() if needs is None or m.needs == needs]


def get(key: str) -> Metric:
    """The record of ``key`` (``auroc``, ``op.ppv``; a ``test.`` prefix is allowed)."""
    k = key.removeprefix("test.")
    if k not in METRICS:
        raise ValueError(f"Unknown metric {key!r}. Known: {', '.join(METRICS)}")
    return METRICS[k]


def _prevalence_weights(y: np.ndarray, w: np.ndarray, factor: float) -> np.ndarray:
    return w if factor == 1.0 else w * np.where(y == 1, 1.0, factor)


def intervals(
    y,
    s,
    ctx: Context,
    keys,
    prevalence: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    chunk: int = 250,
) -> dict[str, tuple[float, list[float] | None]]:
    """(value, 95% interval) of each metric in ``keys`` on one test set, every metric on the same
    stratified resamples (positives and negatives resampled apart: the draws of
    :func:`medtl.metrics.bootstrap_ci`, so AUROC and AP get the same interval as there).

    ``prevalence``: the metrics that depend on it at that deployment prevalence (negatives re-weighted).
    """
    _check_bootstrap(n_boot, alpha)
    records = [get(k) for k in keys]
    y, s = np.asarray(y), np.asarray(s, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    factor = negative_weight(y, prevalence)
    out: dict[str, tuple[float, list[float] | None]] = {}
    for m in records:
        w = _prevalence_weights(y, np.ones((1, y.size)), factor if m.prevalence else 1.0)
        out[m.key] = (float(m.weighted(y, s, w, ctx)[0]), None)
    boot = [m for m in records if m.interval and np.isfinite(out[m.key][0])]
    if not boot:
        return out
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {m.key: [] for m in boot}
    for start in range(0, n_boot, chunk):
        w = stratified_weights(y, min(chunk, n_boot - start), rng)
        for m in boot:
            draws[m.key].append(m.weighted(y, s, _prevalence_weights(y, w, factor if m.prevalence else 1.0), ctx))
    for m in boot:
        out[m.key] = (out[m.key][0], list(_interval(draws[m.key], alpha)))
    return out


def context(pred: dict, rule: str | O.Rule = O.DEFAULT_RULE) -> Context:
    """The context of a run's predictions: the threshold ``rule`` picks on its validation split
    (None where :func:`no_operating_point` gives a reason)."""
    if no_operating_point(pred) is not None:
        return Context()
    return Context(threshold=O.choose_threshold(pred["val_y_true"], pred["val_y_score"], rule))


def no_operating_point(pred: dict | None, run: str = "ID") -> str | None:
    """Why a run's predictions give no operating point (None when they do): recorded before validation
    predictions were kept, several labels, or a validation split with one class."""
    if pred is None:
        return f"no predictions.npz (run {run} did not finish)"
    if "val_y_true" not in pred:
        return NO_OPERATING_POINT.format(run=run)
    vy = np.asarray(pred["val_y_true"])
    if vy.ndim != 1:
        return "operating point not available: it needs one binary target (this run has several labels)"
    if len(np.unique(vy)) < 2:
        return "operating point not available: the validation split has one class only"
    return None


def _nest(flat: dict[str, object]) -> dict:
    out: dict = {}
    for key, v in flat.items():
        part, _, leaf = key.rpartition(".")
        (out.setdefault(part, {}) if part else out)[leaf] = v
    return out


def evaluate(
    pred: dict,
    rule: str | O.Rule = O.DEFAULT_RULE,
    prevalence: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    exclusive: bool = False,
    run: str = "ID",
) -> dict:
    """``metrics.json``'s test section from a run's predictions (``predictions.npz``'s arrays): every
    record with its interval, the operating point chosen on validation and calibration before and
    after temperature scaling. Multi-label runs get calibration per label and its mean.

    ``prevalence``: also each prevalence-dependent metric at that deployment prevalence
    (``auprc_at_prevalence``, ``op.ppv_at_prevalence``, ...) and ``prevalence`` itself.
    """
    y, s = np.asarray(pred["y_true"]), np.asarray(pred["y_score"], dtype=np.float64)
    if y.ndim != 1:
        return _evaluate_labels(pred, exclusive)
    r = O.parse_rule(rule)
    ctx = context(pred, r)
    values = intervals(y, s, ctx, METRICS, None, n_boot, seed)
    flat: dict[str, object] = {}
    for key, (v, ci) in values.items():
        flat[key] = v
        if ci is not None:
            flat[f"{key}_ci"] = ci
    if prevalence is not None:
        at = intervals(y, s, ctx, [k for k, m in METRICS.items() if m.prevalence], prevalence, n_boot, seed)
        for key, (v, ci) in at.items():
            flat[f"{key}_at_prevalence"] = v
            if ci is not None:
                flat[f"{key}_at_prevalence_ci"] = ci
    out = _nest(flat)
    out["sens_at_spec_target"] = SPECIFICITY
    out["ece_equal_mass"] = C.ece(y, s, strategy="quantile")
    if prevalence is not None:
        out["prevalence"] = float(prevalence)
    if ctx.threshold is None:
        out["op"] = {"available": False, "rule": r.text, "reason": no_operating_point(pred, run)}
    else:
        tp, fp, tn, fn = (int(v[0]) for v in O.confusion_weighted(y, s, np.ones((1, y.size)), ctx.threshold))
        vy, vs = np.asarray(pred["val_y_true"]), np.asarray(pred["val_y_score"], dtype=np.float64)
        val = O.rates(*O.confusion_weighted(vy, vs, np.ones((1, vy.size)), ctx.threshold))
        out["op"].update(
            available=True,
            rule=r.text,
            label=r.label,
            threshold=ctx.threshold,
            chosen_on="validation",
            tp=tp,
            fp=fp,
            tn=tn,
            fn=fn,
            val_sensitivity=float(val["sensitivity"][0]),
            val_specificity=float(val["specificity"][0]),
        )
    out["calibration"] = _temperature(pred, exclusive=False)
    return out


def _temperature(pred: dict, exclusive: bool) -> dict:
    """Temperature scaling fitted on validation, applied to test: T, validation log loss before and
    after, and the test calibration (and AUROC, unchanged) after."""
    if "val_y_score" not in pred:
        return {"temperature": None, "reason": "no validation predictions to fit a temperature on"}
    vy, vs = np.asarray(pred["val_y_true"], dtype=np.float64), np.asarray(pred["val_y_score"], dtype=np.float64)
    y, s = np.asarray(pred["y_true"], dtype=np.float64), np.asarray(pred["y_score"], dtype=np.float64)
    t = C.fit_temperature(vy, vs, exclusive)
    scaled, val_scaled = C.apply_temperature(s, t, exclusive), C.apply_temperature(vs, t, exclusive)
    out = {
        "temperature": t,
        "val_nll": C.log_loss(vy, vs, exclusive),
        "val_nll_scaled": C.log_loss(vy, val_scaled, exclusive),
    }
    if y.ndim == 1:
        out.update(
            brier_scaled=C.brier(y, scaled),
            ece_scaled=C.ece(y, scaled),
            auroc_scaled=METRICS["auroc"].value(y, scaled),
        )
    return out


def _evaluate_labels(pred: dict, exclusive: bool) -> dict:
    """Calibration of a multi-label (or multi-class) run: Brier and ECE per label and their mean."""
    y, s = np.asarray(pred["y_true"], dtype=np.float64), np.asarray(pred["y_score"], dtype=np.float64)
    per = [{"brier": C.brier(y[:, k], s[:, k]), "ece": C.ece(y[:, k], s[:, k])} for k in range(y.shape[1])]
    return {
        "brier": float(np.mean([p["brier"] for p in per])),
        "ece": float(np.mean([p["ece"] for p in per])),
        "per_label": per,
        "op": {"available": False, "reason": "an operating point needs one binary target"},
        "calibration": _temperature(pred, exclusive),
    }
