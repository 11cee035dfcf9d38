"""A study's comparison where a clinician acts: at the operating point chosen on validation, and of calibration.

Each run's threshold is the one the study's rule (:mod:`medtl.metrics.operating`) picks on that run's own
validation split; on the shared test images the selected cut and full fine-tuning are then compared with
paired stratified bootstrap intervals (:func:`medtl.stats.paired_records`) for sensitivity, specificity, PPV,
NPV and positives flagged per 1,000 (PPV, NPV and flagged at the deployment prevalence), with McNemar's
exact test of their decisions per seed, and their calibration before and after temperature scaling fitted
on validation (Brier, ECE, a reliability diagram, and the decision curve of the scaled probabilities).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from medtl import stats
from medtl.metrics import calibration as C
from medtl.metrics import decision as D
from medtl.metrics import operating as O
from medtl.metrics.registry import METRICS, Context, context, keys, no_operating_point
from medtl.runs import RunStore


def aligned_predictions(store: RunStore, run_id: str, needs: str = "an operating point needs") -> dict[str, np.ndarray]:
    """A run's predictions with the test part ordered by image index (validation as saved), so that runs on
    the same test images line up; ``needs`` says what asked, in the multi-label error."""
    p = store.predictions(run_id)
    if p is None:
        raise FileNotFoundError(f"Run {run_id} has no predictions.npz")
    if np.asarray(p["y_true"]).ndim != 1:
        raise ValueError(f"Run {run_id} is multi-label: {needs} one binary target")
    order = np.argsort(p["index"], kind="stable")
    return {**p, "index": p["index"][order], "y_true": p["y_true"][order], "y_score": p["y_score"][order]}


def _scaled(p: dict) -> tuple[np.ndarray, float | None]:
    """Test probabilities after temperature scaling fitted on the run's validation split (as they are without one)."""
    if "val_y_score" not in p or len(np.unique(p["val_y_true"])) < 2:
        return np.asarray(p["y_score"], dtype=np.float64), None
    t = C.fit_temperature(p["val_y_true"], p["val_y_score"])
    return C.apply_temperature(p["y_score"], t), t


def _lists(d: dict) -> dict:
    return {k: [float(x) for x in v] for k, v in d.items()}


def compare(
    store: RunStore,
    runs_a: list[str],
    runs_b: list[str],
    rule: str = O.DEFAULT_RULE,
    prevalence: float | None = None,
    n_boot: int = 1000,
    seeds: list[int] | None = None,
) -> dict[str, Any]:
    """Run(s) A against run(s) B (paired by row, e.g. seed) at ``rule``'s operating point and in calibration.

    Returns:
        ``{"available", "rule", "label", "prevalence", "prevalence_is_test", "n", "rows", "calibration",
        "reliability", "decision"}`` and, where every run has validation predictions, ``"metrics"`` (each of
        metric record that needs a threshold: ``{"a", "b", "delta"}`` with intervals), ``"seed_delta"``, ``"mcnemar"`` (per row)
        and ``"thresholds"``; else ``"reason"``.
    """
    r = O.parse_rule(rule)
    pa, pb = [aligned_predictions(store, x) for x in runs_a], [aligned_predictions(store, x) for x in runs_b]
    y = pa[0]["y_true"]
    seeds = list(range(len(runs_a))) if seeds is None else list(seeds)
    out: dict[str, Any] = {
        "rule": r.text,
        "label": r.label,
        "prevalence": float(y.mean()) if prevalence is None else float(prevalence),
        "prevalence_is_test": prevalence is None,
        "n": int(y.size),
        "rows": len(runs_a),
    }
    sa, sb = [_scaled(p) for p in pa], [_scaled(p) for p in pb]
    cal_keys = keys("probabilities")
    raw = stats.paired_records(
        y, [(p["y_score"], Context()) for p in pa], [(p["y_score"], Context()) for p in pb], cal_keys, n_boot=n_boot
    )
    cal: dict[str, Any] = {k: raw[k] for k in cal_keys}
    for side, scaled in (("a", sa), ("b", sb)):
        ts = [t for _, t in scaled if t is not None]
        cal[f"temperature_{side}"] = float(np.mean(ts)) if len(ts) == len(scaled) else None
        if cal[f"temperature_{side}"] is not None:
            cal[f"ece_scaled_{side}"] = float(np.mean([C.ece(y, s) for s, _ in scaled]))
            cal[f"brier_scaled_{side}"] = float(np.mean([C.brier(y, s) for s, _ in scaled]))
    out["calibration"] = cal
    out["reliability"] = {
        side: _lists(C.reliability(np.tile(y, len(scaled)), np.concatenate([s for s, _ in scaled])))
        for side, scaled in (("a", sa), ("b", sb))
    }
    nb = {
        side: np.mean([D.net_benefit(y, s, prevalence=prevalence)["model"] for s, _ in sc], axis=0)
        for side, sc in (("a", sa), ("b", sb))
    }
    ref = D.net_benefit(y, sa[0][0], prevalence=prevalence)
    out["decision"] = {
        "threshold": ref["threshold"].tolist(),
        "a": nb["a"].tolist(),
        "b": nb["b"].tolist(),
        "treat_all": ref["treat_all"].tolist(),
    }
    reasons = [why for p, run in zip(pa + pb, runs_a + runs_b, strict=True) if (why := no_operating_point(p, run))]
    if reasons:
        return {**out, "available": False, "reason": reasons[0]}
    ca, cb = [context(p, r) for p in pa], [context(p, r) for p in pb]
    rows_a = [(p["y_score"], c) for p, c in zip(pa, ca, strict=True)]
    rows_b = [(p["y_score"], c) for p, c in zip(pb, cb, strict=True)]
    out["metrics"] = stats.paired_records(y, rows_a, rows_b, keys("threshold"), prevalence, n_boot)
    out["thresholds"] = {"a": [c.threshold for c in ca], "b": [c.threshold for c in cb]}
    out["mcnemar"] = [
        {"seed": sd, **stats.mcnemar_exact(y, a[0] >= a[1].threshold, b[0] >= b[1].threshold)}
        for sd, a, b in zip(seeds, rows_a, rows_b, strict=True)
    ]
    if len(rows_a) > 1:  # training randomness: the interval of the per-seed differences
        ones = np.ones((1, y.size))
        out["seed_delta"] = {
            k: stats.seed_interval(
                METRICS[k].weighted(y, a[0], ones, a[1])[0] - METRICS[k].weighted(y, b[0], ones, b[1])[0]
                for a, b in zip(rows_a, rows_b, strict=True)
            )
            for k in ("op.sensitivity", "op.specificity")
        }
        for d in out["seed_delta"].values():  # a difference of two rates lies in [-1, 1], as for the AUCs
            d["ci"] = [max(d["ci"][0], -1.0), min(d["ci"][1], 1.0)]
    return {**out, "available": True}


# --- words and tables ----------------------------------------------------------------------------------


UNDEFINED = "undefined"


def _num(x, fmt: str) -> str:
    """``x`` formatted, or :data:`UNDEFINED` for a rate with an empty denominator (NaN, as scikit-learn's
    ``zero_division=np.nan``)."""
    return UNDEFINED if x is None or not np.isfinite(x) else format(x, fmt)


def _ci(d: dict, fmt: str = ".3f") -> str:
    value = _num(d["value"], fmt)
    return value if value == UNDEFINED else f"{value} [{_num(d['ci'][0], fmt)}, {_num(d['ci'][1], fmt)}]"


def undefined_note(table: pd.DataFrame) -> str:
    """Why a value reads :data:`UNDEFINED` (:data:`medtl.metrics.operating.UNDEFINED_NOTE`), as a sentence
    where ``table`` shows one, else empty."""
    shown = table.astype(str).apply(lambda col: col.str.contains(UNDEFINED, regex=False)).to_numpy().any()
    return f" {UNDEFINED.capitalize()}: {O.UNDEFINED_NOTE}." if shown else ""


def _delta(op: dict, key: str) -> str:
    d = op["metrics"][key]["delta"]
    text = f"{d['value']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"
    seeds = (op.get("seed_delta") or {}).get(key)
    if seeds is not None:
        text += f", over seeds [{seeds['ci'][0]:+.3f}, {seeds['ci'][1]:+.3f}]"
    sig = stats.significant(d["ci"]) and (seeds is None or stats.significant(seeds["ci"]))
    return text + ("" if sig else ", not significant")


def prevalence_words(op: dict) -> str:
    where = "the test set's" if op["prevalence_is_test"] else "deployment, negatives re-weighted"
    return f"{op['prevalence']:.1%} prevalence ({where})"


def words(op: dict, label_a: str, label_b: str | None) -> list[str]:
    """The operating point and calibration of A against B in sentences (indented: they follow a group's line);
    ``label_b`` None: A alone (the selected cut is full fine-tuning)."""
    c = op["calibration"]
    scaled = c.get("temperature_a") is not None and c.get("temperature_b") is not None
    if label_b is None:
        if not op.get("available"):
            return [f"  At {op['label']}: {op['reason']}."]
        m = op["metrics"]
        text = (
            f"  At {op['label']} chosen on validation, {label_a} flags {m['op.flagged_per_1000']['a']['value']:.0f} "
            f"of 1,000 patients: sensitivity {_ci(m['op.sensitivity']['a'])}, specificity "
            f"{_ci(m['op.specificity']['a'])}, PPV {_ci(m['op.ppv']['a'])} at {prevalence_words(op)}; "
            f"Brier {c['brier']['a']['value']:.3f}, ECE {c['ece']['a']['value']:.3f}"
        )
        return [text + (f" ({c['ece_scaled_a']:.3f} after temperature scaling)." if scaled else ".")]
    out = []
    if op.get("available"):
        m = op["metrics"]
        flag = m["op.flagged_per_1000"]
        p_values = ", ".join(
            f"{x['p']:.3g}" + (f" (seed {x['seed']})" if len(op["mcnemar"]) > 1 else "") for x in op["mcnemar"]
        )
        out.append(
            f"  At {op['label']} chosen on validation, {label_a} flags {flag['a']['value']:.0f} of 1,000 patients vs "
            f"{flag['b']['value']:.0f} for {label_b}; PPV {_ci(m['op.ppv']['a'])} vs {_ci(m['op.ppv']['b'])} at "
            f"{prevalence_words(op)}; Δ sensitivity {_delta(op, 'op.sensitivity')}, Δ specificity "
            f"{_delta(op, 'op.specificity')} (paired, test images); McNemar exact p = {p_values}."
        )
    else:
        out.append(f"  At {op['label']}: {op['reason']}.")
    text = (
        f"  Calibration (test): Brier {c['brier']['a']['value']:.3f} vs {c['brier']['b']['value']:.3f}, "
        f"ECE {c['ece']['a']['value']:.3f} vs {c['ece']['b']['value']:.3f}"
    )
    if scaled:
        text += (
            f"; after temperature scaling fitted on validation (T = {c['temperature_a']:.2f} vs "
            f"{c['temperature_b']:.2f}): ECE {c['ece_scaled_a']:.3f} vs {c['ece_scaled_b']:.3f}"
        )
    return [*out, text + "."]


def table(summary: dict) -> pd.DataFrame:
    """One row per decided group: the operating point (selected / full fine-tuning), the paired differences
    and McNemar's p, and calibration before and after temperature scaling."""
    rows = []
    for g in summary["groups"]:
        op = g.get("operating")
        if not op:
            continue
        row = {"init": g["init"], "size": g["size"], "selected": g["selected"], "rule": op["label"]}
        if op.get("available"):
            m = op["metrics"]

            def both(k: str, f: str = ".3f", m: dict = m) -> str:
                return f"{_num(m[k]['a']['value'], f)} / {_num(m[k]['b']['value'], f)}"

            row["threshold"] = " / ".join(f"{np.mean(op['thresholds'][s]):.3g}" for s in ("a", "b"))
            for key in m:
                row[METRICS[key].short] = both(key, METRICS[key].fmt)
            row["Δ sensitivity"] = _ci(m["op.sensitivity"]["delta"])
            row["Δ specificity"] = _ci(m["op.specificity"]["delta"])
            row["McNemar p"] = ", ".join(f"{x['p']:.3g}" for x in op["mcnemar"])
        else:
            row["note"] = op["reason"]
        c = op["calibration"]
        for key in keys("probabilities"):
            row[METRICS[key].short] = f"{c[key]['a']['value']:.3f} / {c[key]['b']['value']:.3f}"
        if c.get("temperature_a") is not None and c.get("temperature_b") is not None:
            row["ECE after T"] = f"{c['ece_scaled_a']:.3f} / {c['ece_scaled_b']:.3f}"
        rows.append(row)
    return pd.DataFrame(rows)
