"""Operating points: a threshold chosen on the validation split by a rule, and the confusion at it.

A rule is a record (:data:`RULES`): sensitivity at least a target, specificity at least a target,
Youden's J, or a fixed threshold; written as text in configs and on the command line
(``sensitivity:0.9``, ``specificity:0.95``, ``youden``, ``threshold:0.5``). Every threshold is one
of the validation scores (or, for a specificity the scores cannot reach, just above the highest)
and an image is predicted positive when its score is ``>= threshold``, as the thresholds of
``sklearn.metrics.roc_curve``. The test split is then read at that threshold only: its labels
never move it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medtl.metrics.curves import Curves, check_binary, weighted_curves

__all__ = [
    "DEFAULT_RULE",
    "RULES",
    "Rule",
    "RuleKind",
    "choose_threshold",
    "confusion_weighted",
    "parse_rule",
    "rates",
    "sensitivity_at_specificity",
    "weighted_sensitivity_at_specificity",
]

DEFAULT_RULE = "sensitivity:0.9"
_TOL = 1e-9  # counts compared as "at least s x n": 9 of 10 positives is sensitivity 0.9, not 0.8999...


def _at_least_sensitivity(c: Curves, s: float) -> float:
    # the highest threshold whose share of positives scored >= it is at least s
    k = int(np.argmax(c.tp[0] >= s * c.pos[0] - _TOL))
    return float(c.thresholds[k])


def _at_least_specificity(c: Curves, s: float) -> float:
    # the lowest threshold whose share of negatives scored below it is at least s; above every score if none
    ok = np.flatnonzero(c.fp[0] <= (1 - s) * c.neg[0] + _TOL)
    return float(c.thresholds[ok[-1]]) if ok.size else float(np.nextafter(c.thresholds[0], np.inf))


def _youden(c: Curves, _: float | None) -> float:
    j = c.tpr[0] - c.fpr[0]
    return float(c.thresholds[int(np.argmax(j))])  # ties: the highest threshold (fewest flagged)


@dataclass(frozen=True)
class RuleKind:
    """One way of choosing a threshold on validation: its name in rule texts, its label, whether it
    takes a value (and its range), and how it picks the threshold from the validation curves."""

    name: str
    label: str  # formatted with ``v``, the rule's value
    choose: Callable[[Curves, float | None], float]
    needs_value: bool = True
    lo: float = 0.0
    hi: float = 1.0
    help: str = ""


RULES: dict[str, RuleKind] = {
    r.name: r
    for r in (
        RuleKind(
            "sensitivity",
            "sensitivity ≥ {v:.0%}",
            _at_least_sensitivity,
            help="the highest threshold that keeps at least this share of validation positives",
        ),
        RuleKind(
            "specificity",
            "specificity ≥ {v:.0%}",
            _at_least_specificity,
            help="the lowest threshold that keeps at least this share of validation negatives below it",
        ),
        RuleKind("youden", "Youden's J", _youden, needs_value=False, help="the largest sensitivity + specificity - 1"),
        RuleKind(
            "threshold",
            "threshold {v:.3g}",
            lambda c, v: float(v),
            help="a fixed probability, whatever validation says",
        ),
    )
}


@dataclass(frozen=True)
class Rule:
    """A parsed rule: its kind and value (None for Youden's J)."""

    kind: str
    value: float | None = None

    @property
    def text(self) -> str:
        """The rule as it is written (``sensitivity:0.9``)."""
        return self.kind if self.value is None else f"{self.kind}:{self.value:g}"

    @property
    def label(self) -> str:
        """The rule in words (``sensitivity ≥ 90%``)."""
        return RULES[self.kind].label.format(v=self.value)

    def threshold(self, y_val, s_val) -> float:
        """The threshold this rule picks on validation labels and scores."""
        return choose_threshold(y_val, s_val, self)


def _rule_forms() -> str:
    return ", ".join(f"{k}:V (V in [{r.lo:g}, {r.hi:g}])" if r.needs_value else k for k, r in RULES.items())


def parse_rule(text: str | Rule) -> Rule:
    """``sensitivity:0.9`` -> ``Rule("sensitivity", 0.9)``; refused with the forms allowed."""
    if isinstance(text, Rule):
        return text
    kind, sep, value = str(text).strip().partition(":")
    r = RULES.get(kind.strip().lower())
    if r is None or bool(sep) != r.needs_value:
        raise ValueError(f"operating point must be one of {_rule_forms()}. Got {text!r}")
    if not r.needs_value:
        return Rule(r.name)
    try:
        v = float(value)
    except ValueError:
        raise ValueError(f"operating point {text!r}: {value!r} is not a number ({_rule_forms()})") from None
    if not r.lo <= v <= r.hi or (r.name != "threshold" and v == 0):
        raise ValueError(f"operating point {text!r}: {r.name} must be in ({r.lo:g}, {r.hi:g}]. Got {v:g}")
    return Rule(r.name, v)


def valid_rule(text) -> bool:
    """Whether ``text`` parses (a field rule for configs)."""
    try:
        parse_rule(text)
    except (ValueError, TypeError):
        return False
    return True


def choose_threshold(y_val, s_val, rule: str | Rule) -> float:
    """The threshold ``rule`` picks on validation (labels 0/1, scores); both classes must be present."""
    r = parse_rule(rule)
    y, s = check_binary(y_val, s_val)
    c = weighted_curves(s, y, 1 - y)
    return RULES[r.kind].choose(c, r.value)


def confusion_weighted(y: np.ndarray, s: np.ndarray, w: np.ndarray, threshold: float) -> tuple[np.ndarray, ...]:
    """(tp, fp, tn, fn) at ``score >= threshold`` under each row of weights ``w`` (B, N) (a row of ones: counts)."""
    pred = np.asarray(s) >= threshold
    y = np.asarray(y) == 1
    w = np.atleast_2d(w)
    return (w @ (pred & y), w @ (pred & ~y), w @ (~pred & ~y), w @ (~pred & y))


UNDEFINED_NOTE = (
    "the rate's denominator is empty at that threshold (NPV when the model calls no image negative, PPV when it "
    "flags none)"
)  # why :func:`rates` gives NaN, in words for the tables that show it


def rates(tp, fp, tn, fn) -> dict[str, np.ndarray]:
    """Sensitivity, specificity, PPV, NPV, F1 and positives flagged per 1,000 images from (weighted)
    counts; an empty denominator gives NaN (PPV when nothing is flagged), as scikit-learn's
    ``zero_division=np.nan``. Definitions as ``recall_score``, ``precision_score`` and ``f1_score``."""
    tp, fp, tn, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, tn, fn))

    def div(a, b):
        return np.divide(a, b, out=np.full_like(a, np.nan), where=b != 0)

    return {
        "sensitivity": div(tp, tp + fn),
        "specificity": div(tn, tn + fp),
        "ppv": div(tp, tp + fp),
        "npv": div(tn, tn + fn),
        "f1": div(2 * tp, 2 * tp + fp + fn),
        "flagged_per_1000": 1000 * div(tp + fp, tp + fp + tn + fn),
    }


def weighted_sensitivity_at_specificity(y: np.ndarray, s: np.ndarray, w: np.ndarray, specificity: float) -> np.ndarray:
    """The highest sensitivity of a point on the ROC curve with specificity >= ``specificity``, per row of
    weights (B, N): as torchmetrics' ``BinarySensitivityAtSpecificity`` (0 when no threshold reaches it)."""
    y = np.asarray(y)
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    c = weighted_curves(s, w * (y == 1), w * (y == 0))
    ok = c.fp <= (1 - specificity) * c.neg[:, None] + _TOL
    return np.where(ok, c.tpr, 0.0).max(axis=1)


def sensitivity_at_specificity(y_true, y_score, specificity: float = 0.9) -> float:
    """Sensitivity at a fixed specificity read off the ROC curve of these labels: with the test split's
    labels this is optimistic (the threshold is chosen with the labels it is scored on)."""
    y, s = check_binary(y_true, y_score)
    return float(weighted_sensitivity_at_specificity(y, s, np.ones((1, y.size)), specificity)[0])
