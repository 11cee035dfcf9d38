"""How a study chooses a cut, on the validation split: criteria as records.

``val_auprc``, ``val_auroc`` and ``val_loss`` are read from ``history.jsonl`` at the run's selected
epoch; ``val_op_*`` are a metric at the operating point the study's rule picks on the same validation
predictions (``predictions.npz``'s ``val_*``), e.g. ``val_op_specificity`` with ``sensitivity:0.9`` is the
specificity at 90% sensitivity. The test split is never read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medtl.metrics import operating as O
from medtl.metrics.registry import NO_OPERATING_POINT
from medtl.runs import RunStore

__all__ = ["CRITERIA", "Criterion", "score"]


@dataclass(frozen=True)
class Criterion:
    """A validation criterion: its name, label, direction, and the history column or metric it reads."""

    name: str
    label: str
    higher_is_better: bool = True
    history: str | None = None  # a column of history.jsonl, else ``metric`` at the operating point
    metric: str | None = None  # a key of medtl.metrics.operating.rates
    tie_metric: str = ""  # what the tie check resamples (medtl.stats.delta_over_sets)
    example: str = O.DEFAULT_RULE  # the rule it is usually read at (help texts)

    def words(self, rule: str) -> str:
        """The criterion in a sentence: ``validation AUPRC``, ``validation specificity at sensitivity ≥ 90%``."""
        if self.metric is None:
            return self.label
        return f"{self.label} at {O.parse_rule(rule).label}"


CRITERIA: dict[str, Criterion] = {
    c.name: c
    for c in (
        Criterion("val_auprc", "validation AUPRC", history="val_auprc", tie_metric="auprc"),
        Criterion("val_auroc", "validation AUROC", history="val_auroc", tie_metric="auroc"),
        Criterion("val_loss", "validation loss", higher_is_better=False, history="val_loss", tie_metric="loss"),
        Criterion("val_op_specificity", "validation specificity", metric="specificity", tie_metric="op.specificity"),
        Criterion(
            "val_op_sensitivity",
            "validation sensitivity",
            metric="sensitivity",
            tie_metric="op.sensitivity",
            example="specificity:0.9",
        ),
    )
}


def score(store: RunStore, run_id: str, criterion: str, rule: str = O.DEFAULT_RULE) -> float:
    """The criterion of a finished run on its validation split, signed so that higher is better.

    History criteria read ``metrics.json``'s ``val.best_epoch`` and that line of ``history.jsonl``;
    operating-point criteria read the validation predictions of the selected epoch. Never the test split.
    """
    c = CRITERIA[criterion]
    sign = 1.0 if c.higher_is_better else -1.0
    if c.history is not None:
        best = (store.metrics(run_id) or {}).get("val", {}).get("best_epoch")
        hist = store.history(run_id)
        if not hist:
            raise ValueError(f"Run {run_id} has no history.jsonl: cannot read its {c.label}")
        row = next((h for h in hist if h.get("epoch") == best), hist[-1])
        return sign * float(row[c.history])
    p = store.predictions(run_id)
    if p is None or "val_y_score" not in p or np.asarray(p["val_y_true"]).ndim != 1:
        raise ValueError(f"Run {run_id}: {c.label}: " + NO_OPERATING_POINT.format(run=run_id))
    y, s = p["val_y_true"], p["val_y_score"]
    t = O.choose_threshold(y, s, rule)
    r = O.rates(*O.confusion_weighted(y, s, np.ones((1, len(y))), t))
    return sign * float(r[c.metric][0])
