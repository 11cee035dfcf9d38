"""Compare: runs table, overlaid ROC/PR curves, the operating point, calibration, metric vs truncation depth, seeds."""

import streamlit as st

from medtl import compare, metrics, plots
from ui import damaged, metrics_view, study_view
from ui.nav import link, page_setup
from ui.state import get_store
from ui.text import plain

page_setup("pages/3_Compare.py")
st.title("Compare runs")

store = get_store()
table = store.table()
damaged.note(store)
if table.empty:
    study_view.start_buttons("compare_start")
    st.info("No runs yet. Queue some on the Train page, or point `MEDTL_RUNS` at a runs folder from a GPU server.")
    link("pages/2_Train.py", "Train a model")
    st.stop()
failed = table[table["state"] == "failed"]
if not failed.empty:
    with st.expander(f"{len(failed)} failed run(s)"):
        st.dataframe(failed[["id", "name", "error"]], hide_index=True)
done = table[(table["state"] == "done") & table["duplicate_of"].isna()].copy()  # a copied run counted once
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
    metric = st.selectbox("Metric", list(compare.METRICS), format_func=lambda c: compare.METRICS[c].label, key="metric")
    rule, prevalence = metrics_view.controls()
if done.empty:
    st.warning("No run matches these filters.")
    st.stop()

done = metrics_view.evaluated(done, store, rule, prevalence)
record = compare.METRICS[metric]
done = done.sort_values(metric, ascending=not record.higher_is_better, na_position="last")
done["display"] = compare.short_labels(done, always=("model_label", "_init", "_size", "_seed"))

scores, score_config = metrics_view.table_columns(done, prevalence)
view = done.assign(params=done["model.params"] / 1e6, GMACs=done["model.macs"] / 1e9).join(scores)
cols = ["display", *scores.columns, "params", "GMACs", "model.latency_ms", "train.seconds", "id"]
if view["warning"].notna().any():  # e.g. a diverged run: shown, never hidden
    view["warning"] = view["warning"].fillna("")
    cols.insert(1 + len(scores.columns), "warning")
view = view[cols].rename(
    columns={
        "display": "run",
        "params": "params (M)",
        "model.latency_ms": "latency (ms)",
        "train.seconds": "training (s)",
    }
)
st.caption(
    "Select rows to overlay their curves (the top 8 are shown when none are selected). Sorted by the chosen metric, "
    f"best first ({'higher' if record.higher_is_better else 'lower'} is better); click a header to re-sort. Names show "
    "the dataset only when several are listed, and every other setting in which the runs listed differ. "
    f"Operating-point columns at {plain(metrics.operating.parse_rule(rule).label)}, chosen on validation. "
    + metrics_view.prevalence_caption(prevalence)
)
event = st.dataframe(
    view,
    hide_index=True,
    on_select="rerun",
    selection_mode="multi-row",
    key="runs_table",
    column_config={
        "run": st.column_config.TextColumn(width="large"),
        "params (M)": st.column_config.NumberColumn(format="%.2f"),
        "GMACs": st.column_config.NumberColumn(format="%.3f"),
        "latency (ms)": st.column_config.NumberColumn(format="%.2f"),
        "training (s)": st.column_config.NumberColumn(format="%.0f"),
        **score_config,
    },
)
rows = event.selection.rows if event and event.selection else []
picked = done.iloc[rows] if rows else done.head(8)
shown = done.iloc[rows] if rows else done
st.download_button(
    f"Download {'selected' if rows else 'shown'} runs (CSV, {len(shown)} rows)",
    shown.drop(columns=["display"]).to_csv(index=False),
    "medtl_runs.csv",
    "text/csv",
    key="csv",
)

if len(picked) > 1:
    with st.expander("Differences between the selected runs"):
        st.dataframe(compare.differences(picked))

st.subheader("ROC and precision–recall on the test split")
roc, pr, prevalences = {}, {}, []
picked = picked.assign(legend=compare.short_labels(picked))
for _, r in picked.iterrows():
    p = store.predictions(r["id"])
    if p is None or p["y_true"].ndim != 1:
        continue
    label = f"{compare.wrap(r['legend'], 48)}<br>AUROC {r['test.auroc']:.3f} · AP {r['test.auprc']:.3f}"
    roc[label] = metrics.roc_points(p["y_true"], p["y_score"])
    pr[label] = metrics.pr_points(p["y_true"], p["y_score"], prevalence)
    prevalences.append(float(p["y_true"].mean()) if prevalence is None else prevalence)
if roc:
    c1, c2 = st.columns(2)
    c1.plotly_chart(plots.roc_figure(roc, title=None), key="roc")
    c2.plotly_chart(plots.pr_figure(pr, prevalences, title=None), key="pr")
    st.caption(
        "Dashed lines: chance — the diagonal for ROC, the prevalence for precision–recall. "
        + metrics_view.prevalence_caption(prevalence)
    )
else:
    st.info("Curves are shown for binary tasks.")

st.subheader("At the operating point")
metrics_view.operating_table(picked, rule, prevalence)
st.subheader("Calibration and decision curves")
metrics_view.calibration(picked, store, prevalence)

st.subheader("Metric vs truncation depth")
backbones = sorted(done["model.backbone"].unique())
c1, c2 = st.columns(2)
backbone = c1.selectbox(
    "Backbone", backbones, index=backbones.index(compare.default_backbone(done)), key="trunc_backbone"
)
secondary = c2.selectbox(
    "Second axis",
    [None, *compare.SECONDARY],
    key="secondary",
    format_func=lambda k: "none" if k is None else compare.SECONDARY[k],
)


@st.cache_data(max_entries=64, show_spinner=False)
def _predictions(run_id: str, root: str) -> dict | None:
    return store.predictions(run_id)


summary = compare.truncation_summary(
    done[done["model.backbone"] == backbone],
    metric,
    secondary or "model.params",
    predictions=lambda i: _predictions(i, str(store.root)),
    rule=rule,
    prevalence=prevalence,
)
st.plotly_chart(
    plots.truncation_figure(summary, record.label, compare.SECONDARY.get(secondary), record.value_range), key="trunc"
)
st.caption(
    "One line per setting (the labels name what differs between lines); each point is one experiment — the mean "
    "over its repeats (n seeds, same config otherwise). Bars: 95% interval — for one run its own bootstrap over "
    "test images; for several, a bootstrap over the shared test images of the mean over seeds. Hover for the std "
    "over seeds."
)

st.subheader("Seeds")
seed_label = compare.short_labels(done, seed=False)
groups = done.assign(group=compare.seed_groups(done)).groupby("group")
label_of = {g: compare.wrap(seed_label[idx[0]], 70) for g, idx in groups.groups.items()}
groups = groups[metric].apply(list)
st.plotly_chart(
    plots.seed_figure({f"{label_of[k]} (n={len(v)})": v for k, v in groups.items()}, record.label),
    key="seeds",
)
st.caption("One box per experiment (runs that differ only by seed); n is the number of points.")
