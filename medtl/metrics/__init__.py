"""Classification metrics: pure functions of NumPy arrays, and the records every reader goes through.

The parts, one module each:

- :mod:`~medtl.metrics.curves`: ROC and precision-recall points, AUROC, average precision, their
  vectorised stratified bootstrap, a deployment prevalence as weights on the negatives;
- :mod:`~medtl.metrics.operating`: operating-point rules, the threshold chosen on validation, the
  confusion at it (sensitivity, specificity, PPV, NPV, F1, flagged per 1,000);
- :mod:`~medtl.metrics.calibration`: Brier score, ECE, reliability bins, temperature scaling;
- :mod:`~medtl.metrics.decision`: decision curves (net benefit);
- :mod:`~medtl.metrics.registry`: the metrics as records (:data:`METRICS`) and ``metrics.json``'s test
  section (:func:`evaluate`).
"""

from medtl.metrics.curves import (
    Curves,
    _check_bootstrap,
    _interval,
    _resample_counts,
    auprc_trapezoid,
    auroc,
    average_precision,
    bootstrap_ci,
    bootstrap_ci_labels,
    check_binary,
    check_prevalence,
    confusion_at,
    confusion_rates,
    negative_weight,
    pr_points,
    roc_points,
    stratified_weights,
    weighted_curves,
)
from medtl.metrics.registry import METRICS, NO_OPERATING_POINT, Context, Metric, evaluate, get

__all__ = [
    "METRICS",
    "NO_OPERATING_POINT",
    "Context",
    "Curves",
    "Metric",
    "_check_bootstrap",
    "_interval",
    "_resample_counts",
    "auprc_trapezoid",
    "auroc",
    "average_precision",
    "bootstrap_ci",
    "bootstrap_ci_labels",
    "check_binary",
    "check_prevalence",
    "confusion_at",
    "confusion_rates",
    "evaluate",
    "get",
    "negative_weight",
    "pr_points",
    "roc_points",
    "stratified_weights",
    "weighted_curves",
]
