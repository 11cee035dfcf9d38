"""ROC vs PRC: the ranked-classifier imbalance example as a teaching page."""

import numpy as np
import pandas as pd
import streamlit as st

from medtl import metrics, plots, toy
from ui.nav import page_setup

page_setup("pages/1_ROC_vs_PRC.py")
st.title("ROC vs precision–recall on imbalanced data")
st.markdown(
    "Two classifiers rank the same images. **A** puts every positive somewhere in its top *k*<sub>A</sub>, "
    "**B** somewhere in its top *k*<sub>B</sub> (uniformly at random, scores falling with rank). "
    "Both look perfect on ROC; precision–recall tells them apart.",
    unsafe_allow_html=True,
)

D = toy.DEFAULTS
with st.sidebar:
    st.header("Data and classifiers")
    n_pos = st.number_input("Positives", 1, 10_000, D["n_pos"], key="n_pos")
    n_neg = st.number_input("Negatives", 0, 200_000, D["n_neg"], key="n_neg")
    k_a = st.number_input("A: positives within top k", 1, 210_000, D["k_a"], key="k_a")
    k_b = st.number_input("B: positives within top k", 1, 210_000, D["k_b"], key="k_b")
    draws = st.number_input("Random draws", 1, 5_000, D["draws"], key="draws", help="independent classifiers per k")
    seed = st.number_input("Seed", 0, 2**31 - 1, D["seed"], key="seed")


@st.cache_data(max_entries=32, show_spinner="Drawing classifiers…")
def simulate(n_pos: int, n_neg: int, k_a: int, k_b: int, draws: int, seed: int) -> dict:
    return toy.compare(n_pos, n_neg, k_a, k_b, draws, seed)


try:
    for name, k in (("A", k_a), ("B", k_b)):
        try:
            toy.validate(n_pos, n_neg, k, draws)
        except ValueError as e:
            raise ValueError(f"classifier {name}: {e}") from None
    res = simulate(n_pos, n_neg, k_a, k_b, draws, seed)
except ValueError as e:
    st.error(f"**Cannot build this example:** {e}")
    st.stop()

n = n_pos + n_neg
cut = st.slider(
    "Predict the top N images as positive (threshold)",
    1,
    n,
    min(max(k_a, 1), n),
    key="cut",
    help="moves the markers on both plots and updates the confusion tables",
)
one_draw = (
    st.radio(
        "Curves",
        ["mean over draws", "one draw"],
        horizontal=True,
        key="curve_kind",
        help=f"mean over draws: the threshold-averaged curves of all {draws} classifiers (their legend and table "
        "numbers are means over draws); one draw: the first classifier drawn, with its own numbers",
    )
    == "one draw"
)

roc, pr, marks_roc, marks_pr, bands_roc, bands_pr, tables = {}, {}, {}, {}, {}, {}, {}
for name, r in res.items():
    if one_draw:
        y = r.labels[0]
        label = f"{name} (top {r.k}), draw 1 · AUROC {metrics.auroc(y, r.scores):.3f} · AP {metrics.average_precision(y, r.scores):.3f}"
        roc[label], pr[label] = metrics.roc_points(y, r.scores), metrics.pr_points(y, r.scores)
        t = metrics.confusion_at(y, r.scores, r.scores[cut - 1])
    else:
        s = r.summary()
        label = f"{name} (top {r.k}) · mean AUROC {s['auroc']['mean']:.3f} · mean AP {s['auprc']['mean']:.3f}"
        roc[label], pr[label] = r.mean_points()
        tp = float(roc[label]["tp"][cut])
        t = {"tp": tp, "fp": cut - tp, "fn": n_pos - tp, "tn": n_neg - (cut - tp)}
        t.update(metrics.confusion_rates(t["tp"], t["fp"], t["tn"], t["fn"]))
    marks_roc[label], marks_pr[label] = cut, n - cut  # one point per cut in both kinds of curve
    cc = r.cut_curves()
    bands_roc[label] = {"x": cc["fpr"], "lo": cc["tpr_lo"], "hi": cc["tpr_hi"]}
    bands_pr[label] = {"x": cc["tpr"][::-1], "lo": cc["precision_lo"][::-1], "hi": cc["precision_hi"][::-1]}
    tables[name] = t

show_bands = st.toggle(f"Show the 95% band over all {draws} draws (threshold-averaged)", value=True, key="bands")
c1, c2 = st.columns(2)
prevalence = n_pos / n
c1.plotly_chart(plots.roc_figure(roc, marks_roc, bands_roc if show_bands else None), key="roc")
c2.plotly_chart(plots.pr_figure(pr, prevalence, marks_pr, bands_pr if show_bands else None), key="pr")

st.subheader(f"At the threshold: top {cut} predicted positive")
st.caption("Counts are " + ("those of draw 1." if one_draw else f"means over the {draws} draws."))
rows = {
    name: {
        "TP": t["tp"],
        "FP": t["fp"],
        "FN": t["fn"],
        "TN": t["tn"],
        "sensitivity": t["sensitivity"],
        "specificity": t["specificity"],
        "precision": t["precision"],
        "F1": t["f1"],
    }
    for name, t in tables.items()
}
rates = ["sensitivity", "specificity", "precision", "F1"]
counts_fmt = "{:.0f}" if one_draw else "{:.2f}"
st.dataframe(
    pd.DataFrame.from_dict(rows, orient="index")
    .style.format("{:.3f}", subset=rates, na_rep="—")
    .format(counts_fmt, subset=["TP", "FP", "FN", "TN"]),
    key="confusion",
)

st.subheader(f"Over {draws} draws")
summary = pd.DataFrame(
    {
        f"{name} (top {r.k})": {m: f"{s['mean']:.4f} ± {s['std']:.4f}" for m, s in r.summary().items()}
        for name, r in res.items()
    }
).rename(index={"auroc": "AUROC", "auprc": "AUPRC (average precision)", "auprc_trapezoid": "AUPRC (trapezoid)"})
c3, c4 = st.columns([1, 2])
c3.dataframe(summary, key="summary")
names = {"auroc": "AUROC", "auprc": "AUPRC (AP)", "auprc_trapezoid": "AUPRC (trapz)"}
c4.plotly_chart(
    plots.distribution_figure({f"{k} (top {r.k})": r.metrics for k, r in res.items()}, list(names), names), key="dist"
)

exp_a, exp_b = toy.expected(n_pos, n_neg, k_a), toy.expected(n_pos, n_neg, k_b)
gap_roc = np.mean(res["A"].metrics["auroc"]) - np.mean(res["B"].metrics["auroc"])
gap_pr = np.mean(res["A"].metrics["auprc"]) - np.mean(res["B"].metrics["auprc"])
st.markdown(
    f"""
### Why the curves disagree
- **ROC's false-positive rate divides by the negatives** ({n_neg:,} here). B's extra false positives near the top are a
  few out of {n_neg:,}: FPR barely moves, so AUROC differs by only {gap_roc:.4f}.
- **Precision divides by what you flagged.** Every false positive among the top-ranked images costs precision directly,
  so average precision differs by {gap_pr:.3f}. This is the error a clinician sees: how many flagged images are real.
- **The chance level differs.** A random classifier has AUROC 0.5 whatever the imbalance, but its precision equals the
  prevalence ({prevalence:.3%} here) — the dashed line on the PR plot. A PR curve near that line is no better than chance.
- **Average precision vs trapezoid.** Average precision sums precision × recall gained at each threshold (the steps drawn
  here). The trapezoidal rule interpolates linearly between PR points, which is optimistic where precision falls
  between them; both are reported, clearly named, and they are not interchangeable.
- For these settings the exact expectations (over every placement of the positives) are AUROC
  {exp_a["auroc"]:.3f} vs {exp_b["auroc"]:.3f} and average precision {exp_a["auprc"]:.3f} vs {exp_b["auprc"]:.3f};
  the means above are Monte Carlo estimates of them over {draws} draws.
"""
)
