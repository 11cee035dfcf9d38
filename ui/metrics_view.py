"""The Compare page's metric parts: the operating-point and prevalence controls, the runs table's metric
columns, the operating-point table, reliability diagrams and decision curves — all read from the metric
records (:data:`medtl.metrics.METRICS`) and computed in :mod:`medtl.compare`."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import streamlit as st

from medtl import compare, metrics, plots
from medtl.metrics import operating
from medtl.runs import RunStore
from ui import state
from ui.data_form import index, init
from ui.text import plain


def rule_input(
    key: str, default: str = operating.DEFAULT_RULE, label: str = "Threshold chosen on validation by"
) -> str:
    """An operating-point rule: its kind and, where it takes one, its value; returns the rule's text."""
    start = operating.parse_rule(default)
    kind = st.selectbox(
        label,
        list(operating.RULES),
        index=index(operating.RULES, init(f"{key}_kind", start.kind)) or 0,
        key=f"{key}_kind",
        format_func=lambda k: {"youden": "Youden's J", "threshold": "a fixed threshold"}.get(k, f"{k} at least"),
        help="; ".join(f"{k}: {r.help}" for k, r in operating.RULES.items()),
    )
    if not operating.RULES[kind].needs_value:
        return kind
    v = st.number_input(
        "target" if kind != "threshold" else "probability",
        min_value=0.0 if kind == "threshold" else 0.01,
        max_value=1.0,
        step=0.01,
        value=init(f"{key}_target", start.value if start.value is not None else 0.9),
        key=f"{key}_target",
    )
    return f"{kind}:{v:g}"


def prevalence_input(key: str, default: float | None = None) -> float | None:
    """A deployment prevalence in percent (empty: each test set's own); returns it as a share."""
    value = st.number_input(
        "Deployment prevalence (%)",
        min_value=0.1,
        max_value=99.9,
        step=0.5,
        value=init(key, None if default is None else round(100 * default, 3)),
        key=key,
        placeholder="each test set's own",
        help="AUPRC, the PR curves, PPV, NPV, F1, positives flagged per 1,000 and net benefit are shown at this "
        "prevalence (the test negatives re-weighted: exact, as scikit-learn with sample weights). Empty: each "
        "test set's own.",
    )
    return None if value is None else value / 100


def controls() -> tuple[str, float | None]:
    """The Compare page's operating-point rule and deployment prevalence (None: each test set's own), in the sidebar."""
    st.header("Operating point")
    return rule_input("cmp_op"), prevalence_input("cmp_prevalence")  # keys apart from the data forms'


def prevalence_caption(prevalence: float | None) -> str:
    if prevalence is None:
        return (
            "PR-side numbers (AUPRC, PPV, NPV, F1, flagged per 1,000, net benefit) are at each test set's prevalence."
        )
    return (
        f"Every PR-side number and figure on this page — AUPRC, the PR curves, PPV, NPV, F1, flagged per 1,000, "
        f"net benefit — is at a deployment prevalence of {prevalence:.1%} (test negatives re-weighted); AUROC, "
        "sensitivity, specificity and calibration are the test set's."
    )


ASK_ABOVE = 300  # runs recomputed from their predictions without asking (about 10 s on a 2-core CPU)
SECONDS_PER_RUN = 0.035  # a run's metrics with bootstrap intervals, measured on a 2-core CPU (the estimate said)


@st.cache_data(max_entries=50_000, show_spinner=False)
def _columns(run_id: str, root: str, mtime: float, rule: str, prevalence: float | None) -> dict:
    return compare.run_columns(RunStore(root).predictions(run_id), rule, prevalence, run=run_id)


@st.cache_resource(show_spinner=False)
def _evaluated_views() -> dict[str, pd.DataFrame]:
    """The Compare page's evaluated runs, per view (its runs, the folder's state, rule, prevalence): a rerun of a
    page of 10,000 runs does not look up 10,000 cached runs. Shared between sessions: handed out as copies."""
    return {}


def _evaluate(done: pd.DataFrame, store: RunStore, rule: str, prevalence: float | None) -> pd.DataFrame:
    root = str(store.root)
    ids = done.loc[compare.recomputed(done, rule, prevalence), "id"]
    bar = st.progress(0.0, "Operating points and prevalence from the runs' predictions…") if len(ids) > 20 else None
    count = [0]

    def columns(run_id: str) -> dict:
        out = _columns(run_id, root, state.predictions_stamps(store, (run_id,))[0], rule, prevalence)
        count[0] += 1
        if bar is not None and count[0] % 20 == 0:
            bar.progress(count[0] / len(ids), f"Operating points and prevalence: {count[0]:,} of {len(ids):,} runs")
        return out

    out = compare.with_columns(done, columns, rule, prevalence)
    if bar is not None:
        bar.empty()
    return out


def evaluated(
    done: pd.DataFrame, store: RunStore, rule: str, prevalence: float | None
) -> tuple[pd.DataFrame, str, float | None]:
    """``done`` with metric columns at ``rule`` and ``prevalence`` (recomputed from predictions where needed, cached
    per run and per view), and the rule and prevalence they are at. Above :data:`ASK_ABOVE` runs to recompute the
    page asks first; until then the columns are the recorded ones (the rule each run recorded, each test set's
    prevalence), and the rule and prevalence returned say so."""
    n = int(compare.recomputed(done, rule, prevalence).sum())
    asked = f"recompute_{rule}_{prevalence}"
    if n > ASK_ABOVE and not st.session_state.get(asked):
        minutes = n * SECONDS_PER_RUN / 60
        st.warning(
            f"{'A deployment prevalence' if prevalence is not None else 'This operating-point rule'} needs each run's "
            f"metrics recomputed from its predictions: {n:,} runs, about {minutes:.0f} min on this machine (then "
            f"cached). Until then this page shows the recorded values — each run's own operating point at its test "
            f"set's prevalence. Narrow the filters to {ASK_ABOVE} runs or fewer to see them at once.",
            icon=":material/hourglass:",
        )
        if st.button(f"Recompute {n:,} runs", key="recompute"):
            st.session_state[asked] = True
            st.rerun()
        recorded = done.get("test.op.rule", pd.Series(dtype=object)).dropna()
        rule = recorded.mode().iloc[0] if not recorded.empty else operating.DEFAULT_RULE
        return compare.with_columns(done, lambda _id: {}, rule, None), rule, None
    key = state.digest(store.signature(), tuple(done["id"]), rule, prevalence)
    memo = _evaluated_views()
    found = memo.get(key)
    if found is None:
        found = _evaluate(done, store, rule, prevalence)
        with contextlib.suppress(KeyError, RuntimeError, StopIteration):  # another session trimmed it first
            while len(memo) >= 16:
                memo.pop(next(iter(memo)))  # the oldest view
        memo[key] = found
    return found.copy(), rule, prevalence


def _ci(done: pd.DataFrame, col: str, fmt: str = ".3f") -> list[str]:
    lo = done.get(f"{col}_ci_lo", pd.Series(np.nan, index=done.index))
    hi = done.get(f"{col}_ci_hi", pd.Series(np.nan, index=done.index))
    v = done.get(col, pd.Series(np.nan, index=done.index))
    return [
        "—" if not np.isfinite(a) else f"{a:{fmt}}" + (f" [{b:{fmt}}, {c:{fmt}}]" if np.isfinite(b) else "")
        for a, b, c in zip(v.astype(float), lo.astype(float), hi.astype(float), strict=True)
    ]


def table_columns(done: pd.DataFrame, prevalence: float | None) -> tuple[pd.DataFrame, dict]:
    """The runs table's metric columns (one per record shown in tables) and their column settings."""
    out, config = {}, {}
    for m in (m for m in compare.METRICS.values() if m.table):
        at = f" at {prevalence:.1%}" if prevalence is not None and m.prevalence else ""
        name = m.short + at
        if m.key in ("auroc", "auprc"):
            out[name] = _ci(done, m.column)
        else:
            out[name] = done.get(m.column, pd.Series(np.nan, index=done.index)).astype(float)
            config[name] = st.column_config.NumberColumn(format=f"%{m.fmt}", help=m.label)
    return pd.DataFrame(out, index=done.index), config


def operating_table(picked: pd.DataFrame, rule: str, prevalence: float | None) -> None:
    """Sensitivity, specificity, PPV, NPV, F1 and flagged per 1,000 at the threshold chosen on validation."""
    label = operating.parse_rule(rule).label
    cols = {  # each column's text for every run at once (formatting row by row was a third of a rerun)
        m.short + (f" at {prevalence:.1%}" if prevalence is not None and m.prevalence else ""): _ci(picked, key, m.fmt)
        for key, m in compare.METRICS.items()
        if m.needs == "threshold"
    }
    sens = compare.METRICS["test.sens_at_spec"].short
    cols[sens] = _ci(picked, "test.sens_at_spec")
    notes = picked.get("op_note", pd.Series(None, index=picked.index))
    thresholds = picked.get("test.op.threshold", pd.Series(np.nan, index=picked.index))
    rows = []
    for i, (run_id, legend, note, threshold) in enumerate(
        zip(picked["id"], picked["legend"], notes, thresholds, strict=True)
    ):
        row = {"run": legend}
        if isinstance(note, str) and note:
            row["threshold (validation)"] = note.replace("ID", run_id)
        else:
            row["threshold (validation)"] = f"{threshold:.4g}"
            row.update({c: v[i] for c, v in cols.items() if c != sens})
        row[sens] = cols[sens][i]
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="op_table")
    st.caption(
        f"Each run's threshold is chosen on its own validation split ({plain(label)}; predict positive when the score "
        "is at least the threshold); the test split is read at it, with stratified bootstrap 95% intervals. "
        f"{prevalence_caption(prevalence)} The last column reads sensitivity off the test ROC at a fixed "
        "specificity, as papers report it: optimistic, the threshold uses the test labels. —: not recorded, or "
        f"undefined: {operating.UNDEFINED_NOTE}."
    )


def _views(run_id: str, store: RunStore, prevalence: float | None) -> dict | None:
    """:func:`medtl.compare.calibration_views` of a run, cached by its predictions file's time (a temperature fit
    per run and rerun was a third of the Compare page's rerun); None for a damaged predictions file."""
    try:
        return _cached_views(run_id, str(store.root), state.predictions_stamps(store, (run_id,))[0], prevalence)
    except ValueError:  # damaged since the folder was last looked at: the curves say which are left out
        return None


@st.cache_data(max_entries=512, show_spinner=False)
def _cached_views(run_id: str, root: str, mtime: int, prevalence: float | None) -> dict | None:
    return compare.calibration_views(RunStore(root).predictions(run_id), prevalence)


def calibration(picked: pd.DataFrame, store: RunStore, prevalence: float | None) -> None:
    """Reliability diagrams (as trained or after temperature scaling) and decision curves of the picked runs."""
    views = {r["legend"]: _views(r["id"], store, prevalence) for _, r in picked.iterrows()}
    views = {k: v for k, v in views.items() if v is not None}
    if not views:
        st.info("Calibration is shown for binary tasks.")
        return
    scaled = st.toggle("After temperature scaling (one scalar fitted on each run's validation split)", key="cal_scaled")
    curves = {
        k: v["reliability_scaled"] if scaled and v["reliability_scaled"] is not None else v["reliability"]
        for k, v in views.items()
    }
    c1, c2 = st.columns(2)
    ids = tuple(picked["id"])
    key = (ids, state.predictions_stamps(store, ids), tuple(views), prevalence)
    c1.plotly_chart(
        state.figure(("reliability", scaled, *key), lambda: plots.reliability_figure(curves)), key="reliability"
    )
    prev = next(iter(views.values()))["prevalence"]
    first = next(iter(views.values()))["decision"]
    c2.plotly_chart(
        state.figure(
            ("decision", *key),
            lambda: plots.decision_figure(
                first["threshold"], {k: v["decision"]["model"] for k, v in views.items()}, first["treat_all"], prev
            ),
        ),
        key="decision",
    )
    rows = [
        {
            "run": k.split("<br>")[0],
            "Brier": v["brier"],
            "ECE": v["ece"],
            "temperature": v["temperature"],
            "Brier after T": v["brier_scaled"] if v["temperature"] else None,
            "ECE after T": v["ece_scaled"] if v["temperature"] else None,
        }
        for k, v in views.items()
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="cal_table",
        column_config={
            c: st.column_config.NumberColumn(format="%.3f")
            for c in ("Brier", "ECE", "temperature", "Brier after T", "ECE after T")
        },
    )
    st.caption(
        f"Reliability: per bin of P(positive) ({metrics.calibration.N_BINS} equal-width bins; marker size: images) the "
        "share of positives; on the diagonal a model is calibrated. ECE weighs each bin's gap by its share of images "
        "(torchmetrics' binary L1 calibration error). Decision curve: net benefit of treating when the "
        "temperature-scaled probability is at least the threshold, against treating everyone or no one, at "
        + (f"{prevalence:.1%} prevalence." if prevalence is not None else "the test set's prevalence ")
        + ("" if prevalence is not None else f"({prev:.1%} for the first run).")
    )
