"""Compare: runs table, overlaid ROC/PR curves, metric vs truncation depth, seeds."""

import streamlit as st

from medtl import compare, metrics, plots
from ui.nav import link
from ui.state import get_store

st.set_page_config(page_title="Compare · MedTL Studio", page_icon="📊", layout="wide")
st.title("Compare runs")

store = get_store()
table = store.table()
if table.empty:
    st.info("No runs yet. Queue some on the Train page, or point `MEDTL_RUNS` at a runs folder from a GPU server.")
    link("pages/2_Train.py", "Train a model")
    st.stop()
failed = table[table["state"] == "failed"]
if not failed.empty:
    with st.expander(f"{len(failed)} failed run(s)"):
        st.dataframe(failed[["id", "name", "error"]], hide_index=True)
done = table[table["state"] == "done"].copy()
if done.empty:
    st.info("No finished runs yet: they appear here as soon as one is done.")
    st.stop()

done["size"] = done["data.train_size"].map(compare.size_label)
with st.sidebar:
    st.header("Filter")
    for col, label in (
        ("data.dataset", "Dataset"),
        ("model.backbone", "Backbone"),
        ("model.strategy", "Strategy"),
        ("model.cut", "Cut"),
        ("model.init", "Initialisation"),
        ("size", "Training size"),
    ):
        options = sorted(done[col].astype(str).unique())
        chosen = st.multiselect(label, options, default=options, key=f"f_{col}")
        done = done[done[col].astype(str).isin(chosen)]
    metric = st.selectbox("Metric", list(compare.METRICS), format_func=compare.METRICS.get, key="metric")
if done.empty:
    st.warning("No run matches these filters.")
    st.stop()

done = done.sort_values(metric, ascending=False)
view = done.assign(
    AUROC=[
        f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
        for v, lo, hi in zip(done["test.auroc"], done["test.auroc_ci_lo"], done["test.auroc_ci_hi"], strict=True)
    ],
    AUPRC=[
        f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
        for v, lo, hi in zip(done["test.auprc"], done["test.auprc_ci_lo"], done["test.auprc_ci_hi"], strict=True)
    ],
    params=done["model.params"] / 1e6,
    GMACs=done["model.macs"] / 1e9,
)[["name", "AUROC", "AUPRC", "params", "GMACs", "model.latency_ms", "train.seconds", "id"]].rename(
    columns={"params": "params (M)", "model.latency_ms": "latency (ms)", "train.seconds": "training (s)"}
)
st.caption(
    "Select rows to overlay their curves (all shown when none are selected). Sorted by the chosen metric; click a header to re-sort."
)
event = st.dataframe(
    view,
    hide_index=True,
    on_select="rerun",
    selection_mode="multi-row",
    key="runs_table",
    column_config={
        "params (M)": st.column_config.NumberColumn(format="%.2f"),
        "GMACs": st.column_config.NumberColumn(format="%.3f"),
        "latency (ms)": st.column_config.NumberColumn(format="%.1f"),
        "training (s)": st.column_config.NumberColumn(format="%.0f"),
    },
)
rows = event.selection.rows if event and event.selection else []
picked = done.iloc[rows] if rows else done.head(8)
st.download_button("Download table (CSV)", table.to_csv(index=False), "medtl_runs.csv", "text/csv", key="csv")

if len(picked) > 1:
    with st.expander("Differences between the selected runs"):
        st.dataframe(compare.differences(picked).astype(str))

st.subheader("ROC and precision–recall on the test split")
roc, pr, prevalences = {}, {}, []
for _, r in picked.iterrows():
    p = store.predictions(r["id"])
    if p is None or p["y_true"].ndim != 1:
        continue
    label = f"{r['name']} · AUROC {r['test.auroc']:.3f} · AP {r['test.auprc']:.3f}"
    roc[label], pr[label] = metrics.roc_points(p["y_true"], p["y_score"]), metrics.pr_points(p["y_true"], p["y_score"])
    prevalences.append(float(p["y_true"].mean()))
if roc:
    c1, c2 = st.columns(2)
    c1.plotly_chart(plots.roc_figure(roc, title=None), key="roc")
    c2.plotly_chart(plots.pr_figure(pr, prevalences[0], title=None), key="pr")
else:
    st.info("Curves are shown for binary tasks.")

st.subheader("Metric vs truncation depth")
backbones = sorted(done["model.backbone"].unique())
c1, c2 = st.columns(2)
backbone = c1.selectbox("Backbone", backbones, key="trunc_backbone")
secondary = c2.selectbox(
    "Second axis",
    [None, *compare.SECONDARY],
    key="secondary",
    format_func=lambda k: "none" if k is None else compare.SECONDARY[k],
)
summary = compare.truncation_summary(done[done["model.backbone"] == backbone], metric, secondary or "model.params")
st.plotly_chart(
    plots.truncation_figure(summary, compare.METRICS[metric], compare.SECONDARY.get(secondary)), key="trunc"
)
st.caption(
    "One line per initialisation and training-set size; points are means over seeds, bars one standard deviation."
)

st.subheader("Seeds")
groups = done.assign(group=compare.seed_groups(done)).groupby("group")[metric].apply(list)
st.plotly_chart(plots.seed_figure(groups.to_dict(), compare.METRICS[metric]), key="seeds")
