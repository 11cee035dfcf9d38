"""Plotly figure builders: arrays in, ``go.Figure`` out. No Streamlit here.

Conventions: ROC and PR share equal, square [0, 1] axes; PR is drawn as steps
(``line_shape="hv"`` over points in scikit-learn's order, i.e. the step function whose area is
average precision), never linearly interpolated; the chance line is the diagonal for ROC and
the prevalence for PR. Hover shows the threshold and the TP/FP counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from medtl.strategies import STRATEGIES

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
_HOVER = "%{customdata[3]}<br>x=%{x:.3f}, y=%{y:.3f}<br>threshold %{customdata[0]:.4g}<br>TP %{customdata[1]:.0f}, FP %{customdata[2]:.0f}<extra></extra>"


def _square(fig: go.Figure, x_title: str, y_title: str, title: str | None) -> go.Figure:
    fig.update_xaxes(title=x_title, range=[-0.01, 1.01], constrain="domain", zeroline=False)
    fig.update_yaxes(
        title=y_title, range=[-0.01, 1.01], scaleanchor="x", scaleratio=1, constrain="domain", zeroline=False
    )
    fig.update_layout(title=title, template="plotly_white", margin=dict(l=10, r=10, t=40 if title else 10))
    return legend_below(fig, 440)


def legend_below(fig: go.Figure, plot_height: int, line_px: int = 19) -> go.Figure:
    """The legend under the x-axis title, one entry a line, in pixels rather than a share of the plot: a
    share (``y=-0.18``) lets a long legend of many runs climb over the axis title as the plot shrinks.
    ``plot_height``: the figure's height without its legend; ``line_px``: the height of a legend line."""
    lines = sum((tr.name or "").count("<br>") + 1 for tr in fig.data if tr.name and tr.showlegend is not False)
    legend_px = line_px * lines + 8
    fig.update_layout(
        # "normal": Plotly lists traces in reverse once a band fills to the next trace (B above A)
        legend=dict(orientation="v", x=0, xanchor="left", y=0, yref="container", yanchor="bottom", traceorder="normal"),
        height=plot_height + legend_px,
        margin_b=62 + legend_px,
    )
    return fig


def _custom(points: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    n = len(points["thresholds"])
    return np.stack([points["thresholds"], points["tp"], points["fp"], np.full(n, name, dtype=object)], axis=1)


def _band(fig: go.Figure, x, lo, hi, color: str, name: str, shape: str) -> None:
    fig.add_scatter(x=x, y=hi, mode="lines", line=dict(width=0, shape=shape), showlegend=False, hoverinfo="skip")
    fig.add_scatter(
        x=x,
        y=lo,
        mode="lines",
        line=dict(width=0, shape=shape),
        fill="tonexty",
        fillcolor=_rgba(color, 0.18),
        name=name,
        hoverinfo="skip",
    )


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _marker(fig: go.Figure, x: float, y: float, color: str, label: str) -> None:
    fig.add_scatter(
        x=[x],
        y=[y],
        mode="markers",
        marker=dict(size=13, color=color, symbol="circle-open", line=dict(width=3)),
        cliponaxis=False,  # a threshold at the plot's edge (recall 1, FPR 0) shows its whole circle
        name=label,
        showlegend=False,
        hovertemplate=f"{label}<br>x=%{{x:.3f}}, y=%{{y:.3f}}<extra></extra>",
    )


def _curve_figure(
    curves, x: str, y: str, shape: str, chance: Sequence[tuple[list, list, str]], markers, bands
) -> go.Figure:
    """Curves (one trace per entry, ``pts[x]`` vs ``pts[y]``) over dashed chance lines, with
    optional shaded bands and threshold markers: the shared body of ROC and PR figures."""
    fig = go.Figure()
    for cx, cy, label in chance:  # drawn first (below the curves), listed last
        fig.add_scatter(
            x=cx,
            y=cy,
            mode="lines",
            line=dict(dash="dash", color="grey", width=1),
            name=label,
            hoverinfo="skip",
            legendrank=2000,
        )
    for i, (name, pts) in enumerate(curves.items()):
        color = PALETTE[i % len(PALETTE)]
        short = name.split(" ")[0]
        if bands and name in bands:
            b = bands[name]
            _band(fig, b["x"], b["lo"], b["hi"], color, f"{short} 95% band", shape)
            fig.data[-1].legendrank = 2 * i + 1  # each curve's band listed right after it
        fig.add_scatter(
            x=pts[x],
            y=pts[y],
            mode="lines",
            name=name,
            legendrank=2 * i,
            line=dict(color=color, width=2, shape=shape),
            customdata=_custom(pts, name),
            hovertemplate=_HOVER,
        )
        if markers and name in markers:
            j = markers[name]
            _marker(fig, pts[x][j], pts[y][j], color, f"{short} at threshold")
    return fig


def roc_figure(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    markers: Mapping[str, int] | None = None,
    bands: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    title: str | None = "ROC",
) -> go.Figure:
    """ROC curves with the chance diagonal.

    Args:
        curves: legend name -> :func:`medtl.metrics.roc_points` output.
        markers: legend name -> index into that curve's points to mark (a chosen threshold).
        bands: legend name -> ``{"x", "lo", "hi"}`` arrays drawn as a shaded band.
    """
    fig = _curve_figure(curves, "fpr", "tpr", "linear", [([0, 1], [0, 1], "chance")], markers, bands)
    return _square(fig, "False positive rate (1 − specificity)", "True positive rate (sensitivity)", title)


def pr_figure(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    prevalence: float | Sequence[float],
    markers: Mapping[str, int] | None = None,
    bands: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    title: str | None = "Precision–recall",
) -> go.Figure:
    """Precision-recall curves as steps, with the chance line at the prevalence.

    Args:
        curves: legend name -> :func:`medtl.metrics.pr_points` output (scikit-learn order).
        prevalence: share of positives (a random classifier's precision); several values (runs on
            different test sets) give one chance line per distinct prevalence.
        markers, bands: as in :func:`roc_figure`.
    """
    values = sorted({round(float(p), 4) for p in np.atleast_1d(prevalence)})
    chance = [([0, 1], [p, p], f"chance (prevalence {p:.3g})") for p in values]
    fig = _curve_figure(curves, "recall", "precision", "hv", chance, markers, bands)
    return _square(fig, "Recall (sensitivity)", "Precision (PPV)", title)


def prevalence_figure(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    chosen: float,
    simulated: Mapping[str, Mapping[str, float]] | None = None,
    height: int = 380,
) -> go.Figure:
    """AUROC and AP against the deployment prevalence, one colour per classifier.

    Args:
        curves: classifier -> ``{"prevalence", "auroc", "auprc"}`` arrays (exact expectations,
            :func:`medtl.toy.expected_over_prevalence`).
        chosen: the prevalence shown elsewhere on the page (a vertical line).
        simulated: classifier -> ``{"auroc", "auprc"}`` means over draws at ``chosen`` (markers).
    """
    fig = go.Figure()
    for i, (name, c) in enumerate(curves.items()):
        color = PALETTE[i % len(PALETTE)]
        x = 100 * np.asarray(c["prevalence"])
        for key, dash, label in (("auroc", "dot", "AUROC"), ("auprc", "solid", "AP")):
            fig.add_scatter(
                x=x,
                y=c[key],
                mode="lines",
                name=f"{name}: {label} (exact)",
                line=dict(color=color, dash=dash, width=2),
                hovertemplate=f"{name} {label}<br>prevalence %{{x:.1f}}%<br>%{{y:.3f}}<extra></extra>",
            )
        if simulated and name in simulated:
            s = simulated[name]
            fig.add_scatter(
                x=[100 * chosen] * 2,
                y=[s["auroc"], s["auprc"]],
                mode="markers",
                name=f"{name}: mean over draws",
                marker=dict(color=color, size=10, symbol="x"),
                hovertemplate=f"{name} mean over draws<br>%{{y:.3f}}<extra></extra>",
            )
    fig.add_vline(x=100 * chosen, line=dict(color="grey", dash="dash", width=1))
    fig.update_layout(
        template="plotly_white",
        xaxis=dict(title="deployment prevalence (%)", type="log", tickvals=[1, 2, 5, 10, 20, 50]),
        yaxis=dict(title="expected value", range=[0, 1.02]),
        legend=dict(orientation="h", x=0, y=-0.25, xanchor="left", yanchor="top"),
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
    )
    return fig


def distribution_figure(
    values: Mapping[str, Mapping[str, np.ndarray]], metrics: Sequence[str], labels: Mapping[str, str] | None = None
) -> go.Figure:
    """Box plots with all points: one box per (group, metric), grouped by metric.

    Args:
        values: group name (e.g. classifier) -> metric name -> values over draws or seeds.
        metrics: which metrics to show, in order.
        labels: display names of the metrics.
    """
    labels = labels or {}
    fig = go.Figure()
    for i, (group, per_metric) in enumerate(values.items()):
        xs, ys = [], []
        for m in metrics:
            v = np.asarray(per_metric[m])
            xs += [labels.get(m, m)] * v.size
            ys += v.tolist()
        fig.add_box(
            x=xs,
            y=ys,
            name=group,
            marker_color=PALETTE[i % len(PALETTE)],
            boxpoints="all",
            jitter=0.4,
            pointpos=0,
            marker=dict(size=3, opacity=0.5),
        )
    fig.update_layout(
        boxmode="group",
        template="plotly_white",
        yaxis=dict(title="value", range=[0, 1.02]),
        height=380,
        margin=dict(l=10, r=10, t=10, b=10),
    )
    return fig


# --- explanatory diagrams ------------------------------------------------------------------------

BLOCK_STYLE = {
    "fine-tuned": ("#1f77b4", "pretrained, fine-tuned"),
    "frozen": ("#9ecae1", "pretrained, frozen"),
    "random": ("#fdae6b", "re-initialised, trained"),
    "discarded": ("#eeeeee", "discarded"),
    "head": ("#2ca02c", "new head"),
}


def strategy_rows(blocks: int = 5, cut_after: int = 4) -> dict[str, list[str]]:
    """One diagram row per strategy record: its ``diagram`` states below and above a cut after ``cut_after`` blocks."""
    rows = {}
    for s in sorted(STRATEGIES.values(), key=lambda s: not s.reference):  # the reference first
        below, above = s.diagram
        rows[f"{s.name} ({s.label})"] = [below] * cut_after + [above] * (blocks - cut_after)
    return rows


def block_diagram(
    rows: Mapping[str, Sequence[str]], blocks: Sequence[str], height: int = 260, legend: bool = True
) -> go.Figure:
    """Rows of coloured blocks (one per network stage) followed by a head, with a legend.

    Args:
        rows: row label -> one state per block, each a key of ``BLOCK_STYLE``.
        blocks: block names, bottom of the network first.
    """
    fig = go.Figure()
    labels = list(rows)
    for r, label in enumerate(labels):
        y = len(labels) - 1 - r
        for c, state in enumerate([*rows[label], "head"]):
            color = BLOCK_STYLE[state][0]
            fig.add_shape(
                type="rect",
                x0=c + 0.06,
                x1=c + 0.94,
                y0=y + 0.12,
                y1=y + 0.88,
                fillcolor=color,
                line=dict(
                    color="white" if state != "discarded" else "#bbbbbb",
                    dash="dot" if state == "discarded" else "solid",
                ),
            )
    for color, text in BLOCK_STYLE.values():
        fig.add_scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker=dict(size=12, color=color, symbol="square"),
            name=text,
            showlegend=legend,
        )
    fig.update_xaxes(
        range=[0, len(blocks) + 1],
        tickvals=[i + 0.5 for i in range(len(blocks) + 1)],
        ticktext=[*blocks, "head"],
        tickangle=0,
        tickfont=dict(size=10),
        showgrid=False,
        zeroline=False,
    )
    fig.update_yaxes(
        range=[0, len(labels)],
        tickvals=[len(labels) - 0.5 - i for i in range(len(labels))],
        ticktext=labels,
        showgrid=False,
        zeroline=False,
    )
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        legend=dict(orientation="h", y=-0.18),
        plot_bgcolor="white",
    )
    return fig


def truncation_diagram(blocks: Sequence[str], cut: str) -> go.Figure:
    """One network: blocks up to ``cut`` kept and fine-tuned, the rest discarded."""
    k = list(blocks).index(cut) + 1
    rows = {
        "full TL": ["fine-tuned"] * len(blocks),
        f"TTL @ {cut}": ["fine-tuned"] * k + ["discarded"] * (len(blocks) - k),
    }
    return block_diagram(rows, blocks, height=170, legend=False)


def strategies_diagram(blocks: Sequence[str] = ("stem", "L1", "L2", "L3", "L4")) -> go.Figure:
    """Every transfer strategy, cut before the last block."""
    return block_diagram(strategy_rows(len(blocks), len(blocks) - 1), blocks, height=300)


def toy_bars(values: Mapping[str, Mapping[str, float]], y_title: str = "expected value (exact)") -> go.Figure:
    """AUROC and AUPRC (AP) of the toy classifiers side by side.

    Args:
        values: legend name -> ``{"auroc": ..., "auprc": ...}``, e.g. :func:`medtl.toy.expected`.
        y_title: what the values are (exact expectations, or means over draws).
    """
    fig = go.Figure()
    for i, (name, v) in enumerate(values.items()):
        ys = [float(v["auroc"]), float(v["auprc"])]
        fig.add_bar(
            x=["AUROC", "AUPRC (AP)"],
            y=ys,
            name=name,
            marker_color=PALETTE[i],
            text=[f"{y:.3f}" for y in ys],
            textposition="outside",
        )
    fig.update_layout(
        template="plotly_white",
        barmode="group",
        yaxis=dict(range=[0, 1.15], title=y_title),
        height=300,
        margin=dict(l=10, r=10, t=10, b=10),
        legend=dict(orientation="h", y=-0.15),
    )
    return fig


# --- training and comparison ------------------------------------------------------------------------


def training_curves(history: Sequence[Mapping[str, float]], height: int = 220) -> go.Figure:
    """Loss (left axis) and validation AUROC / AUPRC (right axis) per epoch."""
    ep = [h["epoch"] for h in history]
    fig = go.Figure()
    fig.add_scatter(x=ep, y=[h["train_loss"] for h in history], name="train loss", line=dict(color=PALETTE[0]))
    fig.add_scatter(x=ep, y=[h["val_loss"] for h in history], name="val loss", line=dict(color=PALETTE[0], dash="dot"))
    fig.add_scatter(
        x=ep, y=[h["val_auroc"] for h in history], name="val AUROC", yaxis="y2", line=dict(color=PALETTE[1])
    )
    fig.add_scatter(
        x=ep, y=[h["val_auprc"] for h in history], name="val AUPRC", yaxis="y2", line=dict(color=PALETTE[2])
    )
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(title="epoch", dtick=1),
        yaxis=dict(title="loss"),
        yaxis2=dict(title="val metric", overlaying="y", side="right", range=[0, 1]),
        legend=dict(orientation="h", y=-0.3),
    )
    return fig


def truncation_figure(
    summary, metric_label: str, secondary_label: str | None = None, value_range: tuple[float, float] = (0.0, 1.0)
) -> go.Figure:
    """Metric against cut depth, one line per group, the mean over repeats with its 95% interval
    (``lo``/``hi`` columns of :func:`medtl.compare.truncation_summary`); n and the std over seeds on
    hover. Optionally a second axis (dashed grey) with parameters, MACs or latency per cut.
    ``value_range``: the metric's range (its record's), which the y axis stays within."""
    fig = go.Figure()
    order = summary.sort_values("depth").drop_duplicates("cut")[["depth", "cut"]]
    for i, (group, g) in enumerate(summary.groupby("group", sort=True)):
        g = g.sort_values("depth")
        has_ci = g["lo"].notna() & g["hi"].notna()
        fig.add_scatter(
            x=g["cut"],
            y=g["mean"],
            error_y=dict(
                type="data",
                symmetric=False,
                array=np.where(has_ci, g["hi"] - g["mean"], 0),
                arrayminus=np.where(has_ci, g["mean"] - g["lo"], 0),
                visible=True,
            ),
            mode="lines+markers",
            name=group,
            line=dict(color=PALETTE[i % len(PALETTE)], width=2.5),
            marker=dict(size=9),
            customdata=np.stack([g["lo"], g["hi"], g["std"], g["count"]], axis=1),
            hovertemplate="%{x}: %{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}] · std over seeds "
            "%{customdata[2]:.3f} · n=%{customdata[3]}<extra>" + group + "</extra>",
        )
        fig.add_scatter(
            x=g["cut"],
            y=g["mean"],
            mode="text",
            text=[f"n={n}" for n in g["count"]],
            textposition="top right",
            textfont=dict(size=10, color=PALETTE[i % len(PALETTE)]),
            showlegend=False,
            hoverinfo="skip",
        )
    if secondary_label:
        sec = summary.sort_values("depth").drop_duplicates("cut")
        fig.add_scatter(
            x=sec["cut"],
            y=sec["secondary"],
            name=secondary_label,
            yaxis="y2",
            mode="lines+markers",
            line=dict(color="grey", dash="dash", width=1.5),
            marker=dict(symbol="square", size=7),
            hovertemplate="%{x}: %{y:.3~s}<extra>" + secondary_label + "</extra>",
        )
    lo = np.nanmin(np.r_[summary["lo"].to_numpy(float), summary["mean"].to_numpy(float)])
    hi = np.nanmax(np.r_[summary["hi"].to_numpy(float), summary["mean"].to_numpy(float)])
    span = value_range[1] - value_range[0]
    pad = max(0.02 * span, 0.08 * (hi - lo))
    fig.update_layout(
        template="plotly_white",
        height=460,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=-0.25),
        xaxis=dict(
            title="cut point (bottom → top of the network)", categoryorder="array", categoryarray=list(order["cut"])
        ),
        yaxis=dict(
            title=f"test {metric_label}",
            range=[max(value_range[0], lo - pad), min(value_range[1] + 0.01 * span, hi + pad)],
        ),
        yaxis2=dict(
            title=secondary_label or "", overlaying="y", side="right", showgrid=False, type="log", tickformat=".2~s"
        )
        if secondary_label
        else None,
    )
    return fig


def seed_figure(values: Mapping[str, Sequence[float]], metric_label: str) -> go.Figure:
    """Per configuration, the metric of each seed (points) and their spread (box), one row per
    configuration so that long labels stay readable."""
    fig = go.Figure()
    for i, (label, v) in enumerate(values.items()):
        fig.add_box(
            x=list(v),
            name=label,
            orientation="h",
            boxpoints="all",
            jitter=0.3,
            pointpos=0,
            marker_color=PALETTE[i % len(PALETTE)],
        )
    fig.update_layout(
        template="plotly_white",
        height=140 + 44 * len(values),
        showlegend=False,
        xaxis=dict(title=f"test {metric_label}"),
        yaxis=dict(automargin=True, autorange="reversed"),
        margin=dict(l=10, r=10, t=10, b=10),
    )
    return fig


def cka_figure(results: Mapping[str, Mapping]) -> go.Figure:
    """Linear CKA per stage (bottom → top) between each run's network before and after training
    (solid), and between an independent random network and the trained one (dotted, the
    baseline); ``results`` maps a label to :func:`medtl.similarity.run_similarity`'s output."""
    fig = go.Figure()
    order: list[str] = []
    for i, (label, r) in enumerate(results.items()):
        color = PALETTE[i % len(PALETTE)]
        order += [s for s in r["stages"] if s not in order]
        fig.add_scatter(
            x=r["stages"],
            y=r["cka_initial"],
            mode="lines+markers",
            name=f"{label}: vs its initialisation ({r['init']})",
            line=dict(color=color, width=2.5),
            marker=dict(size=9),
            hovertemplate="%{x}: CKA %{y:.3f}<extra>" + label + "</extra>",
        )
        fig.add_scatter(
            x=r["stages"],
            y=r["cka_random"],
            mode="lines+markers",
            name=f"{label}: vs a random network",
            line=dict(color=color, width=1.5, dash="dot"),
            marker=dict(size=6, symbol="x"),
            hovertemplate="%{x}: CKA %{y:.3f} (random baseline)<extra>" + label + "</extra>",
        )
    fig.update_layout(
        template="plotly_white",
        height=420,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=-0.25),
        xaxis=dict(title="stage (bottom → top of the network)", categoryorder="array", categoryarray=order),
        yaxis=dict(title="linear CKA with the trained network", range=[0, 1.05]),
    )
    return fig


def difference_figure(rows: Sequence[Mapping], title: str = "selected cut − full fine-tuning") -> go.Figure:
    """Paired differences with 95% intervals, one row per comparison, AUROC and AUPRC side by side.

    Args:
        rows: ``{"label", "delta_auroc": {"value", "ci"}, "delta_auprc": {...}}`` per comparison.
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("Δ AUROC", "Δ AUPRC"))
    labels = [r["label"] for r in rows]
    for col, key in enumerate(("delta_auroc", "delta_auprc"), start=1):
        v = np.array([r[key]["value"] for r in rows])
        lo = np.array([r[key]["ci"][0] for r in rows])
        hi = np.array([r[key]["ci"][1] for r in rows])
        # significant as the conclusions judge it (with seeds: the interval over seeds too), else the interval
        metric = key.removeprefix("delta_")
        sig = np.array(
            [
                r["significant"][metric] if "significant" in r else a > 0 or b < 0
                for r, a, b in zip(rows, lo, hi, strict=True)
            ]
        )
        fig.add_scatter(
            x=v,
            y=labels,
            mode="markers",
            marker=dict(size=10, color=[PALETTE[0] if s else "grey" for s in sig]),
            error_x=dict(type="data", symmetric=False, array=hi - v, arrayminus=v - lo),
            showlegend=False,
            hovertemplate="%{y}: %{x:+.3f}<extra></extra>",
            row=1,
            col=col,
        )
        fig.add_vline(x=0, line=dict(color="black", width=1, dash="dot"), row=1, col=col)
    fig.update_layout(
        template="plotly_white",
        height=140 + 40 * len(rows),
        margin=dict(l=10, r=10, t=50, b=10),
        title=dict(
            text=f"{title}: paired bootstrap 95% interval over test images; grey: not significant", font=dict(size=13)
        ),
    )
    return fig


def search_figure(groups: Sequence[Mapping], order: Sequence[str], criterion_label: str) -> go.Figure:
    """The validation criterion of every cut a search trained, one line per group; stage-2 cuts open
    markers, the selected cut a star (the choices are made on these values only).

    Args:
        groups: ``{"label", "val": {cut: value}, "stage2": [...], "selected"}`` per group.
        order: every cut name, bottom of the network first (the x axis).
    """
    fig = go.Figure()
    for i, g in enumerate(groups):
        cuts = [c for c in order if c in g["val"]]
        if not cuts:
            continue
        color = PALETTE[i % len(PALETTE)]
        stage2 = set(g.get("stage2", ()))
        fig.add_scatter(
            x=cuts,
            y=[g["val"][c] for c in cuts],
            mode="lines+markers",
            name=g["label"],
            line=dict(color=color),
            marker=dict(size=9, symbol=["circle-open" if c in stage2 else "circle" for c in cuts]),
        )
        if g.get("selected") in g["val"]:
            fig.add_scatter(
                x=[g["selected"]],
                y=[g["val"][g["selected"]]],
                mode="markers",
                marker=dict(symbol="star", size=16, color=color),
                name=f"selected ({g['label']})",
                showlegend=False,
            )
    fig.update_layout(
        template="plotly_white",
        height=400,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(title="cut point (bottom → top)", categoryorder="array", categoryarray=list(order)),
        yaxis=dict(title=f"validation {criterion_label} (mean over seeds)"),
        legend=dict(orientation="h", y=-0.3),
    )
    return fig


def reliability_figure(curves: Mapping[str, Mapping[str, Sequence[float]]], title: str | None = None) -> go.Figure:
    """Reliability diagram: per bin the share of positives against the mean predicted probability (marker
    area ~ images in the bin), one line per run, over the diagonal of perfect calibration.

    Args:
        curves: legend name -> :func:`medtl.metrics.calibration.reliability` output.
    """
    fig = go.Figure()
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="grey", width=1), name="perfectly calibrated"
    )
    for i, (name, r) in enumerate(curves.items()):
        count = np.asarray(r["count"], dtype=float)
        fig.add_scatter(
            x=r["mean_predicted"],
            y=r["fraction_positive"],
            mode="lines+markers",
            name=name,
            line=dict(color=PALETTE[i % len(PALETTE)], width=2),
            marker=dict(size=6 + 14 * np.sqrt(count / max(count.max(), 1))),
            customdata=count,
            hovertemplate="mean P(positive) %{x:.3f}<br>positives %{y:.3f}<br>%{customdata:.0f} images<extra>"
            + name.split("<br>")[0]
            + "</extra>",
        )
    return _square(fig, "Mean predicted probability (bin)", "Share of positives (bin)", title)


def decision_figure(
    threshold: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    treat_all: Sequence[float],
    prevalence: float,
    title: str | None = None,
) -> go.Figure:
    """Decision curve: net benefit against the threshold probability, per model, with treat all and treat
    none (:func:`medtl.metrics.decision.net_benefit`). The y axis runs from a little below 0 to the prevalence
    (the most any strategy can gain), so that treat all's fall does not flatten the models."""
    fig = go.Figure()
    fig.add_scatter(x=threshold, y=treat_all, mode="lines", name="treat all", line=dict(color="grey", width=1.5))
    fig.add_scatter(
        x=threshold, y=np.zeros(len(threshold)), mode="lines", name="treat none", line=dict(color="black", dash="dot")
    )
    for i, (name, nb) in enumerate(curves.items()):
        fig.add_scatter(
            x=threshold,
            y=nb,
            mode="lines",
            name=name,
            line=dict(color=PALETTE[i % len(PALETTE)], width=2.5),
            hovertemplate="threshold %{x:.2f}: net benefit %{y:.4f}<extra>" + name.split("<br>")[0] + "</extra>",
        )
    fig.update_layout(
        title=title,
        template="plotly_white",
        margin=dict(l=10, r=10, t=40 if title else 10),
        xaxis=dict(title="threshold probability (treat when P(positive) ≥ it)", range=[0, 1]),
        yaxis=dict(title="net benefit", range=[-0.1 * prevalence - 0.005, 1.1 * prevalence + 0.005]),
    )
    return legend_below(fig, 360)
