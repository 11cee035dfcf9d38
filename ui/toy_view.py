"""The ROC-vs-PRC page's prevalence, operating-point and presentation parts (medtl.toy in, widgets out)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from medtl import plots, toy

PREVALENCE = "toy_prevalence"  # None (the set's own) or a percent of LEVELS
LEVELS = (1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12.5, 15, 20, 25, 30, 40, 50)
TARGET = "toy_sensitivity"  # percent, 5-100
PRESENT = "present"
SWEEP = np.geomspace(0.01, 0.5, 40)

# Presentation mode: larger text for a projector, less padding so the plots sit above the fold at 1024x768.
_CSS = """
<style>
[data-testid="stMainBlockContainer"] { padding-top: 4.5rem; }
[data-testid="stMainBlockContainer"] p, [data-testid="stMainBlockContainer"] li,
[data-testid="stMainBlockContainer"] label p, [data-testid="stMainBlockContainer"] td,
[data-testid="stMainBlockContainer"] th { font-size: 1.3rem; }
[data-testid="stMainBlockContainer"] h1 { font-size: 2.2rem; padding: 0 0 0.25rem 0; }
[data-testid="stMainBlockContainer"] h3 { font-size: 1.8rem; }
</style>
"""


def controls(own: float) -> tuple[float | None, bool]:
    """The deployment prevalence (None: the set's own) and presentation mode, in the sidebar.

    Args:
        own: the set's own prevalence (positives / all), the control's first stop.
    """
    st.header("Deployment prevalence")
    pct = st.select_slider(
        "Prevalence",
        [None, *LEVELS],
        key=PREVALENCE,
        format_func=lambda v: f"this set's ({own:.2%})" if v is None else f"{v:g}%",
        help="The same two classifiers where this share of the patients is positive: each negative counts "
        "(positives / negatives) × (1 − π) / π times. AUROC, sensitivity and specificity stay; precision, AP, the "
        "PR curve and the patients flagged per true positive move.",
    )
    present = st.toggle("Presentation mode", key=PRESENT, help="larger text and plots above the fold for a classroom")
    return (None if pct is None else pct / 100), present


def style(present: bool) -> None:
    if present:
        st.markdown(_CSS, unsafe_allow_html=True)  # fixed CSS, no user text


def chart(where, fig: go.Figure, present: bool, key: str, height: int = 440) -> None:
    """Draw ``fig`` in ``where`` (``st`` or a column); in presentation mode with projector-sized fonts and a
    height that fits under the title at 768 px, and without Streamlit's chart theme (which sets its own fonts)."""
    where.plotly_chart(sized(fig, present, height), key=key, theme=None if present else "streamlit")


def sized(fig: go.Figure, present: bool, height: int = 440) -> go.Figure:
    """``fig`` with projector-sized fonts and a given height (presentation mode), else as it is."""
    if present:
        fig.update_layout(font=dict(size=17), legend=dict(font=dict(size=16)))
        if fig.layout.legend.yref == "container":  # a legend in pixels under the plot (ROC, PR): room for larger lines
            plots.legend_below(fig, height - 110, line_px=24)
        else:
            fig.update_layout(height=height)
        fig.update_xaxes(tickfont=dict(size=15), title_font=dict(size=15))
        fig.update_yaxes(tickfont=dict(size=15), title_font=dict(size=15))
    return fig


def words(prevalence: float | None, own: float) -> str:
    if prevalence is None:
        return f"at this set's own prevalence ({own:.2%})"
    return f"at a deployment prevalence of {prevalence:.1%} (this set's own: {own:.2%}; negatives re-weighted)"


def prevalence_section(p: dict, res: dict, prevalence: float | None, own: float, present: bool) -> None:
    """Exact expected AUROC and AP against prevalence (1-50%), the chosen one marked with the draws' means."""
    n_pos, n_neg, draws = p["n_pos"], p["n_neg"], p["draws"]
    chosen = own if prevalence is None else prevalence
    curves = {name: toy.expected_over_prevalence(n_pos, n_neg, r.k, SWEEP) for name, r in res.items()}
    at = {name: toy.expected(n_pos, n_neg, r.k, prevalence) for name, r in res.items()}
    sim = {name: {m: float(np.mean(v)) for m, v in r.metrics.items()} for name, r in res.items()}
    if all(c is not None for c in curves.values()):
        fig = plots.prevalence_figure({f"{n} (top {r.k})": curves[n] for n, r in res.items()}, chosen, None)
        chart(st, fig, present, "prevalence_fig", 380)
        st.caption(
            "Lines: exact expectations over every placement of the positives (no sampling) from 1% to 50%; "
            f"dashed line: the prevalence chosen in the sidebar ({chosen:.1%}). AUROC (dotted) is flat: it never "
            "looks at how many negatives there are. AP (solid) falls as the prevalence falls."
        )
    else:
        st.caption(f"Exact curves over 1–50% are skipped above {toy.MAX_TERMS:,} terms; the values below are exact.")
    table = pd.DataFrame(
        {
            f"{name} (top {r.k})": {
                "AUROC, exact": f"{at[name]['auroc']:.4f}",
                f"AUROC, mean over {draws} draws": f"{sim[name]['auroc']:.4f}",
                "AP, exact": f"{at[name]['auprc']:.4f}",
                f"AP, mean over {draws} draws": f"{sim[name]['auprc']:.4f}",
            }
            for name, r in res.items()
        }
    )
    st.dataframe(table, key="prevalence_table")
    st.caption(f"Both classifiers {words(prevalence, own)}.")


def operating_section(p: dict, res: dict, prevalence: float | None, own: float) -> None:
    """At a chosen sensitivity: images flagged, flagged per true positive and per 1,000 patients."""
    n_pos, n_neg = p["n_pos"], p["n_neg"]
    target = st.slider(
        "Target sensitivity (%)",
        5,
        100,
        step=5,
        key=TARGET,
        help="each classifier flags images down its ranking until it has found this share of the positives",
    )
    rows, ex = {}, {}
    for name, r in res.items():
        s = r.at_sensitivity(target / 100, prevalence)
        ex[name] = toy.expected_at_sensitivity(n_pos, n_neg, r.k, target / 100, prevalence)
        rows[f"{name} (top {r.k})"] = {
            "positives found": f"{s['found']} of {n_pos}",
            "images flagged": f"{s['flagged']:.1f}",
            "false positives": f"{s['fp']:.1f}",
            "specificity": f"{s['specificity']:.4f}",
            "flagged per true positive": f"{s['per_tp']:.2f}",
            "flagged per true positive, exact": f"{ex[name]['per_tp']:.2f}",
            "flagged per 1,000 patients": f"{s['per_1000']:.1f}",
        }
    st.dataframe(pd.DataFrame(rows), key="operating_table")
    a, b = ex["A"], ex["B"]
    st.markdown(
        f"To find {a['found']} of {n_pos} positives ({a['sensitivity']:.0%} sensitivity), **A flags {a['per_tp']:.2f} "
        f"patients per true positive and B {b['per_tp']:.2f}** (exact expectations) {words(prevalence, own)}: "
        f"B sends {b['per_tp'] / a['per_tp']:.1f}× as many patients to work-up for each one it finds, while their "
        f"specificities ({a['specificity']:.4f} vs {b['specificity']:.4f}) look alike."
    )
    st.caption(
        "Means over the draws, and the exact expectation 1 + w (k − positives) / (positives + 1), the same for every "
        "target: w is how much each negative counts at the prevalence. Per 1,000 patients: "
        "1,000 × (π · sensitivity + (1 − π) · (1 − specificity))."
    )
