"""ROC vs PRC: the ranked-classifier imbalance example as a teaching page."""

import pandas as pd
import streamlit as st

from medtl import plots, toy
from ui import toy_view
from ui.nav import page_setup

page_setup("pages/1_ROC_vs_PRC.py")
st.title("ROC vs precision–recall on imbalanced data")

# each setting of toy.DEFAULTS: its label (the name its errors are blamed on), range and help
FIELDS = {
    "n_pos": ("Positives", 1, 10_000, None),
    "n_neg": ("Negatives", 0, 200_000, None),
    "k_a": ("Top k of classifier A", 1, 210_000, "A puts every positive somewhere in its top k"),
    "k_b": ("Top k of classifier B", 1, 210_000, "B puts every positive somewhere in its top k"),
    "draws": ("Random draws", 1, 5_000, "independent classifiers per k"),
    "seed": ("Seed", 0, 2**31 - 1, None),
}
# The chosen top N lives apart from its slider: the slider's range follows n, and Streamlit makes a
# new slider (back at its default) whenever the range changes.
THRESHOLD = "roc_threshold"
START = {
    **toy.DEFAULTS,
    THRESHOLD: toy.DEFAULT_THRESHOLD,
    "curve_kind": "mean over draws",
    "bands": True,
    toy_view.PREVALENCE: None,
    toy_view.TARGET: 90,
    toy_view.PRESENT: False,
}
state = st.session_state
for key, value in START.items():
    if key not in state:
        state[key] = value


def reset() -> None:
    state.update(START)


def remember_threshold() -> None:
    state[THRESHOLD] = state.threshold


with st.sidebar:
    st.header("Data and classifiers")
    p = {key: st.number_input(label, lo, hi, key=key, help=h) for key, (label, lo, hi, h) in FIELDS.items()}
    own = p["n_pos"] / max(p["n_pos"] + p["n_neg"], 1)
    prevalence, present = toy_view.controls(own)
    st.button("Reset", key="reset", on_click=reset, help="every setting, the threshold and the view as at the start")
n_pos, n_neg, k_a, k_b, draws = (p[k] for k in ("n_pos", "n_neg", "k_a", "k_b", "draws"))
toy_view.style(present)
if not present:
    st.markdown(
        "Two classifiers rank the same images. **A** puts every positive somewhere in its top *k*<sub>A</sub>, "
        "**B** somewhere in its top *k*<sub>B</sub> (uniformly at random, scores falling with rank). "
        "Both look perfect on ROC; precision–recall tells them apart, the more so the rarer the positives.",
        unsafe_allow_html=True,
    )
figures = st.container()  # presentation mode: the plots first, the controls below them


@st.cache_data(max_entries=32, show_spinner="Drawing classifiers…")
def simulate(n_pos: int, n_neg: int, k_a: int, k_b: int, draws: int, seed: int) -> dict:
    return toy.compare(n_pos, n_neg, k_a, k_b, draws, seed)


bad = toy.problems(n_pos, n_neg, {"k_a": k_a, "k_b": k_b}, draws)
for e in bad:
    st.error(f"{FIELDS[e.param][0]}: {e.problem}")
if bad:
    st.stop()
res = {name: r.at_prevalence(prevalence) for name, r in simulate(**p).items()}  # PR side at the chosen prevalence

n = n_pos + n_neg
wanted = state[THRESHOLD]
state[THRESHOLD] = min(wanted, n)
# Hand the slider its value only when it would not have it: a new range (a new slider), a Reset, or
# a rerun after an error hid it. Setting it on every rerun would also undo keys pressed meanwhile.
if state.get("roc_slider_n") != n or state.get("threshold") != state[THRESHOLD]:
    state.threshold = state[THRESHOLD]
state.roc_slider_n = n
cut = st.slider(
    "Predict the top N images as positive (threshold)",
    1,
    n,
    key="threshold",
    on_change=remember_threshold,
    help="moves the markers on both plots and updates the confusion tables",
)
if wanted > n:
    st.info(f"The threshold was the top {wanted:,}, more than the {n:,} images there are now: it is set to {n:,}.")
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

curves = toy.drawn(res, one_draw, short=present)  # short legend lines fit beside the other plot at projector sizes
marks_roc, marks_pr = curves.marks(cut)

show_bands = st.toggle(f"Show the 95% band over all {draws} draws (threshold-averaged)", key="bands")
chance = own if prevalence is None else prevalence
area = figures if present else st.container()
c1, c2 = area.columns(2)
toy_view.chart(c1, plots.roc_figure(curves.roc, marks_roc, curves.roc_bands if show_bands else None), present, "roc")
toy_view.chart(c2, plots.pr_figure(curves.pr, chance, marks_pr, curves.pr_bands if show_bands else None), present, "pr")
area.caption(f"Precision, AP and the PR curve {toy_view.words(prevalence, own)}; ROC does not depend on it.")

st.subheader(f"At the threshold: top {cut} predicted positive")
st.caption(
    "Counts are "
    + ("those of draw 1" if one_draw else f"means over the {draws} draws")
    + f" (images of this set); precision and F1 {toy_view.words(prevalence, own)}."
)
columns = {"tp": "TP", "fp": "FP", "fn": "FN", "tn": "TN", "f1": "F1"}
rows = pd.DataFrame(toy.confusion(res, cut, 0 if one_draw else None)).T.rename(columns=columns)
rates = ["sensitivity", "specificity", "precision", "F1"]
counts_fmt = "{:.0f}" if one_draw else "{:.2f}"
st.dataframe(
    rows.style.format("{:.3f}", subset=rates, na_rep="—").format(counts_fmt, subset=["TP", "FP", "FN", "TN"]),
    key="confusion",
)

st.subheader("The same two classifiers at other prevalences")
toy_view.prevalence_section(p, res, prevalence, own, present)

st.subheader("At a chosen sensitivity: patients flagged per true positive")
toy_view.operating_section(p, res, prevalence, own)

st.subheader(f"Over {draws} draws")
# full width: beside the plot its second column was cut off at 1280 px
st.dataframe(pd.DataFrame(toy.summary_table(res)), key="summary")
st.caption(f"AP {toy_view.words(prevalence, own)}.")
names = {"auroc": "AUROC", "auprc": "AUPRC (AP)", "auprc_trapezoid": "AUPRC (trapz)"}
st.plotly_chart(
    plots.distribution_figure({f"{k} (top {r.k})": r.metrics for k, r in res.items()}, list(names), names), key="dist"
)

exp_a, exp_b = toy.expected(n_pos, n_neg, k_a, prevalence), toy.expected(n_pos, n_neg, k_b, prevalence)
gap = toy.gaps(res)
st.markdown(
    f"""
### Why the curves disagree
- **ROC's false-positive rate divides by the negatives** ({n_neg:,} here). B's extra false positives near the top are a
  few out of {n_neg:,}: FPR barely moves, so AUROC differs by only {gap["auroc"]:.4f}.
- **Precision divides by what you flagged.** Every false positive among the top-ranked images costs precision directly,
  so average precision differs by {gap["auprc"]:.3f}. This is the error a clinician sees: how many flagged images are real.
- **The chance level differs.** A random classifier has AUROC 0.5 whatever the imbalance, but its precision equals the
  prevalence ({chance:.3%} here) — the dashed line on the PR plot. A PR curve near that line is no better than chance.
  The prevalence control moves that line, the PR curves and AP, never AUROC: the rarer the positives, the more each
  false positive costs in precision.
- **Average precision vs trapezoid.** Average precision sums precision × recall gained at each threshold (the steps drawn
  here). The trapezoidal rule interpolates linearly between PR points, which is optimistic where precision falls
  between them; both are reported, clearly named, and they are not interchangeable.
- For these settings, {toy_view.words(prevalence, own)}, the exact expectations (over every placement of the positives) are AUROC
  {exp_a["auroc"]:.3f} vs {exp_b["auroc"]:.3f} and average precision {exp_a["auprc"]:.3f} vs {exp_b["auprc"]:.3f};
  the means above are Monte Carlo estimates of them over {draws} draws.
"""
)
