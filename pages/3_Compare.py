"""Compare: runs table, overlaid ROC/PR curves, the operating point, calibration, metric vs truncation depth, seeds."""

import numpy as np
import streamlit as st

from medtl import compare, metrics, plots
from medtl.states import State
from ui import damaged, metrics_view, study_view
from ui.nav import link, page_setup
from ui.state import figure, get_store, predictions_stamps, runs_table, truncation_summary
from ui.text import plain

page_setup("pages/3_Compare.py")
st.title("Compare runs")

store = get_store()
table = runs_table(store)
damaged.note(store)
if table.empty:
    study_view.start_buttons("compare_start")
    st.info("No runs yet. Queue some on the Train page, or point `MEDTL_RUNS` at a runs folder from a GPU server.")
    link("pages/2_Train.py", "Train a model")
    st.stop()
failed = table[table["state"] == State.FAILED]
if not failed.empty:
    with st.expander(f"{len(failed)} failed run(s)"):
        st.dataframe(failed[["id", "name", "error"]], hide_index=True)
done = table[(table["state"] == State.DONE) & table["duplicate_of"].isna()].copy()  # a copied run counted once
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

TABLE_ROWS, TRUNCATION_LINES, SEED_BOXES = 500, 12, 30  # what stays readable (and fast) with 10,000 runs
POOLED_FILES = 150  # prediction files read for the truncation figure's intervals without asking
done, rule, prevalence = metrics_view.evaluated(done, store, rule, prevalence)
record = compare.METRICS[metric]
done = done.sort_values(metric, ascending=not record.higher_is_better, na_position="last")
# names from the runs listed (the best TABLE_ROWS): they show every setting in which those differ
done["display"] = ""
done.iloc[:TABLE_ROWS, done.columns.get_loc("display")] = compare.short_labels(
    done.head(TABLE_ROWS), always=("model_label", "_init", "_size", "_seed")
)

scores, score_config = metrics_view.table_columns(done.head(TABLE_ROWS), prevalence)
view = done.head(TABLE_ROWS).assign(params=done["model.params"] / 1e6, GMACs=done["model.macs"] / 1e9).join(scores)
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
    + (
        f" Showing the best {TABLE_ROWS:,} of {len(done):,} runs: narrow the filters in the sidebar to list others; "
        "the figures below and the CSV cover all of them."
        if len(done) > TABLE_ROWS
        else ""
    )
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
    lambda: shown.drop(columns=["display"]).to_csv(index=False),  # made on the click, not on every rerun
    "medtl_runs.csv",
    "text/csv",
    key="csv",
)

if len(picked) > 1:
    with st.expander("Differences between the selected runs"):
        st.dataframe(compare.differences(picked))

st.subheader("ROC and precision–recall on the test split")
picked = picked.assign(legend=compare.short_labels(picked))


def curves() -> tuple:
    """(ROC figure, PR figure, unreadable runs): None figures when no run is binary."""
    roc, pr, prevalences, unreadable = {}, {}, [], []
    for _, r in picked.iterrows():
        try:
            p = store.predictions(r["id"])
        except ValueError as e:  # damaged since the folder was last looked at: left out, said below
            unreadable.append(str(e))
            continue
        if p is None or p["y_true"].ndim != 1:
            continue
        label = f"{compare.wrap(r['legend'], 48)}<br>AUROC {r['test.auroc']:.3f} · AP {r['test.auprc']:.3f}"
        roc[label] = metrics.roc_points(p["y_true"], p["y_score"])
        pr[label] = metrics.pr_points(p["y_true"], p["y_score"], prevalence)
        prevalences.append(float(p["y_true"].mean()) if prevalence is None else prevalence)
    if not roc:
        return None, None, unreadable
    return plots.roc_figure(roc, title=None), plots.pr_figure(pr, prevalences, title=None), unreadable


ids = tuple(picked["id"])
shown_values = tuple(picked["legend"]), tuple(picked["test.auroc"]), tuple(picked["test.auprc"])
roc, pr, unreadable = figure(("curves", ids, predictions_stamps(store, ids), shown_values, prevalence), curves)
if roc is not None:
    c1, c2 = st.columns(2)
    c1.plotly_chart(roc, key="roc")
    c2.plotly_chart(pr, key="pr")
    st.caption(
        "Dashed lines: chance — the diagonal for ROC, the prevalence for precision–recall. "
        + metrics_view.prevalence_caption(prevalence)
    )
elif not unreadable:
    st.info("Curves are shown for binary tasks.")
if unreadable:
    st.warning("Curves left out:\n\n" + "\n\n".join(plain(u) for u in unreadable), icon=":material/broken_image:")

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


args = (store, done[done["model.backbone"] == backbone], metric, secondary or "model.params", TRUNCATION_LINES)
summary = truncation_summary(*args, intervals=False, rule=rule, prevalence=prevalence)
# a repeated experiment's interval is a bootstrap over the predictions of all its seeds: cheap for a study,
# a minute for the thousands of files of a cluster sweep, so then asked for
to_read = int(summary.loc[summary["count"] > 1, "count"].sum()) if compare.pooled_metric(metric) else 0
if to_read and (
    to_read <= POOLED_FILES
    or st.checkbox(
        f"95% intervals for repeated experiments (a bootstrap over the test images; reads {to_read:,} prediction "
        "files)",
        key="trunc_intervals",
    )
):
    summary = truncation_summary(*args, intervals=True, rule=rule, prevalence=prevalence)
st.plotly_chart(
    figure(
        ("trunc", summary.attrs.get("key"), record.label, secondary),
        lambda: plots.truncation_figure(summary, record.label, compare.SECONDARY.get(secondary), record.value_range),
    ),
    key="trunc",
)
hidden = summary.attrs.get("hidden_lines", 0)
st.caption(
    "One line per setting (the labels name what differs between lines); each point is one experiment — the mean "
    "over its repeats (n seeds, same config otherwise). Bars: 95% interval — for one run its own bootstrap over "
    "test images; for several, a bootstrap over the shared test images of the mean over seeds. Hover for the std "
    "over seeds."
    + (
        " Repeated experiments have no bar until their intervals are asked for above."
        if to_read > POOLED_FILES and not st.session_state.get("trunc_intervals")
        else ""
    )
    + (
        f" {hidden:,} more line(s) not drawn: the {TRUNCATION_LINES} with the most experiments (then the best mean) "
        "are; narrow the filters in the sidebar to see others."
        if hidden
        else ""
    )
)

st.subheader("Seeds")
values = done.groupby("experiment", sort=False)[metric].apply(list)  # one experiment = one key: its repeats
n_experiments = len(values)
if n_experiments > SEED_BOXES:  # the experiments with the most repeats, then the best mean
    order = sorted(values.index, key=lambda k: (-len(values[k]), -float(np.nanmean(values[k])), k))
    values = values[order[:SEED_BOXES]]
boxed = done[done["experiment"].isin(values.index)]
# labels from the experiments drawn: the name without its seed plus whatever tells them apart
seed_label = compare.short_labels(boxed, seed=False)
label_of = {k: compare.wrap(seed_label[idx[0]], 70) for k, idx in boxed.groupby("experiment").groups.items()}
boxes = {f"{label_of[k]} (n={len(v)})": v for k, v in values.items()}
st.plotly_chart(
    figure(("seeds", repr(boxes), record.label), lambda: plots.seed_figure(boxes, record.label)), key="seeds"
)
st.caption(
    "One box per experiment (runs that differ only by seed); n is the number of points."
    + (
        f" The {SEED_BOXES} experiments with the most repeats (then the best mean) of {n_experiments:,}; narrow the "
        "filters to see others."
        if n_experiments > SEED_BOXES
        else ""
    )
)
