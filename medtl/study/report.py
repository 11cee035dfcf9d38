"""A study's report as one self-contained HTML file: opens in a browser with no network access.

plotly.js is embedded once (inline, with the first figure); the file holds the conclusions, the
tables, the figures, every run's config, and the software versions and device it was written on.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from medtl import compare, plots
from medtl.compare import SECONDARY, truncation_summary
from medtl.models.registry import cut_stages
from medtl.runs import RunStore, now
from medtl.study import StudyConfig, load_advice, operating, planned
from medtl.study.conclusions import summarize
from medtl.study.criteria import CRITERIA

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}
th{background:#f5f5f5}li{margin:.3em 0}pre{background:#f7f7f7;padding:.5em;font-size:.8em;overflow-x:auto}
.note{color:#666;font-size:.9em}
"""


def _ci(d: dict) -> str:
    return f"{d['value']:.3f} [{d['ci'][0]:.3f}, {d['ci'][1]:.3f}]"


def _groups_table(summary: dict) -> pd.DataFrame:
    rows = []
    for g in summary["groups"]:
        row = {"backbone": g["backbone"], "strategy": g["strategy"], "init": g["init"], "size": g["size"]}
        row["stage 1 best"] = g["stage1_best"] or "-"
        row["stage 2 cuts"] = ", ".join(g["stage2"]) or "-"
        row["selected"] = g["selected"] or "-"
        if g.get("vs_full"):
            v = g["vs_full"]
            row.update(
                {
                    "AUROC": _ci(g["selected_test"]["auroc"]),
                    "AUPRC": _ci(g["selected_test"]["auprc"]),
                    "full AUROC": _ci(g["full_test"]["auroc"]),
                    "full AUPRC": _ci(g["full_test"]["auprc"]),
                    "Δ AUROC": _ci(v["delta_auroc"]),
                    "Δ AUPRC": _ci(v["delta_auprc"]),
                    "DeLong p": f"{v['delong_p']:.3g}",
                    "params (M)": f"{g['model']['selected'].get('params', float('nan')) / 1e6:.2f} / "
                    f"{g['model']['full'].get('params', float('nan')) / 1e6:.2f}",
                    "latency ms": f"{g['model']['selected'].get('latency_ms', float('nan')):.2f} / "
                    f"{g['model']['full'].get('latency_ms', float('nan')):.2f}",
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


groups_table = _groups_table  # public: the Study page shows the same table


def _study_runs(study: StudyConfig, store: RunStore) -> pd.DataFrame:
    """The store's table restricted to the study's finished runs."""
    done = store.experiments()
    ids = [done[c.key()] for c in planned(study, store, done) if c.key() in done]
    table = store.table()
    return table[table["id"].isin(ids)] if not table.empty else table


def figures(
    study: StudyConfig, store: RunStore, summary: dict, similarity: dict | None = None
) -> list[tuple[str, object]]:
    """(caption, plotly figure) pairs of the report, in order; ``similarity``:
    :func:`medtl.similarity.study_similarity` (the feature-reuse figure), where computed."""
    out = []
    runs = _study_runs(study, store)
    prevalence = summary.get("prevalence")
    if not runs.empty:
        n_seeds = len(study.seeds)
        if prevalence is not None:  # AUPRC at the deployment prevalence, as every PR-side number here
            runs = compare.with_columns(
                runs,
                lambda i: compare.run_columns(store.predictions(i), study.operating_point, prevalence),
                study.operating_point,
                prevalence,
            )
        for metric in ("test.auprc", "test.auroc"):
            label = compare.METRICS[metric].label
            at = (
                f" at {prevalence:.1%} prevalence"
                if prevalence is not None and compare.METRICS[metric].prevalence
                else ""
            )
            s = truncation_summary(
                runs,
                metric,
                "model.params",
                predictions=store.predictions,
                rule=study.operating_point,
                prevalence=prevalence,
            )
            out.append(
                (
                    f"Test {label}{at} by cut: {'the mean over ' + str(n_seeds) + ' seeds' if n_seeds > 1 else 'one seed'}; "
                    "bars: 95% bootstrap interval over the test images"
                    + (" of that mean (it does not show the spread between seeds)" if n_seeds > 1 else "")
                    + "; dashed grey: parameters kept",
                    plots.truncation_figure(s, label + at, SECONDARY["model.params"]),
                )
            )
    searched = [g for g in summary["groups"] if g["val"]]
    if searched:
        sign = 1 if CRITERIA[study.criterion].higher_is_better else -1  # choices maximise -loss; show the loss itself
        order = sorted(
            {c for g in searched for c in g["val"]}, key=lambda c: cut_stages(searched[0]["backbone"]).get(c, 0)
        )
        rows = [
            {
                "label": f"{g['backbone']} {g['strategy']} · {g['init']} · {g['size']}",
                "val": {c: sign * v for c, v in g["val"].items()},
                "stage2": g["stage2"],
                "selected": g["selected"],
            }
            for g in searched
        ]
        crit = CRITERIA[study.criterion].words(study.operating_point).removeprefix("validation ")
        out.append(
            (f"Validation {crit} of each cut: what the choices were made on", plots.search_figure(rows, order, crit))
        )
    diffs = [
        {"label": f"{g['strategy']}@{g['selected']} · {g['init']} · {g['size']}", **g["vs_full"]}
        for g in summary["groups"]
        if g.get("vs_full") and g["selected"] != "full"
    ]
    if diffs:
        out.append(
            (
                "Selected cut minus full fine-tuning on the same test images (with several seeds: of the mean over "
                "seeds, and grey unless the interval over seeds also excludes 0)",
                plots.difference_figure(diffs),
            )
        )
    if summary["tl_vs_ri"]:
        rows = [{"label": f"{r['backbone']} {r['strategy']} · {r['size']}", **r} for r in summary["tl_vs_ri"]]
        out.append(("ImageNet vs random initialisation", plots.difference_figure(rows, "ImageNet − random init")))
    if summary.get("backbones"):
        rows = [{"label": f"{r['best']} − {r['other']} · {r['init']} · {r['size']}", **r} for r in summary["backbones"]]
        out.append(
            ("Backbones, full fine-tuning", plots.difference_figure(rows, "best backbone on validation − other"))
        )
    out += calibration_figures(summary)
    sims = {k: v for k, v in (similarity or {}).items() if "error" not in v}
    if sims:
        out.append((SIMILARITY_CAPTION, plots.cka_figure(sims)))
    return out


def calibration_figures(summary: dict) -> list[tuple[str, object]]:
    """Reliability diagrams and decision curves of each decided group's selected cut and full fine-tuning
    (temperature-scaled probabilities, the seeds' test predictions pooled; net benefit the mean over seeds)."""
    decided = [g for g in summary["groups"] if g.get("operating")]
    if not decided:
        return []
    rel, nb = {}, {}
    for g in decided:
        op, tag = g["operating"], f"{g['init']} · {g['size']}"
        if g["selected"] != "full":
            rel[f"{g['selected']} · {tag}"], nb[f"{g['selected']} · {tag}"] = (
                op["reliability"]["a"],
                op["decision"]["a"],
            )
        rel[f"full FT · {tag}"], nb[f"full FT · {tag}"] = op["reliability"]["b"], op["decision"]["b"]
    first = decided[0]["operating"]
    prev = operating.prevalence_words(first)
    return [
        (
            "Reliability of the selected cut and full fine-tuning on the test split, after temperature scaling "
            "fitted on validation (15 equal-width bins of P(positive); marker size: images)",
            plots.reliability_figure(rel),
        ),
        (
            f"Decision curves at {prev}: net benefit of treating when the scaled probability is at least the "
            "threshold, against treating everyone (grey) or no one",
            plots.decision_figure(
                first["decision"]["threshold"], nb, first["decision"]["treat_all"], first["prevalence"]
            ),
        ),
    ]


SIMILARITY_CAPTION = (
    "Feature reuse: linear CKA of each stage with the network before training (solid) and with an independent "
    "random network (dotted), mean over seeds, on 64 test images"
)


def similarity_table(similarity: dict) -> pd.DataFrame:
    """One row per configuration, one column per stage: CKA with the initialisation (random baseline)."""
    rows = []
    for label, r in similarity.items():
        row = {"configuration": label, "seeds": len(r.get("runs", []))}
        if "error" in r:
            row["note"] = r["error"]
        else:
            for stage, a, b in zip(r["stages"], r["cka_initial"], r["cka_random"], strict=True):
                row[stage] = f"{a:.2f} ({b:.2f})"
        rows.append(row)
    return pd.DataFrame(rows).fillna("—")  # a truncated network has no stages above its cut


def build_report(study: StudyConfig, store: RunStore, prevalence: float | None = None) -> str:
    """The report's HTML text; ``prevalence``: the PR-side numbers at it (default the study's)."""
    from medtl.similarity import study_similarity
    from medtl.system import status

    summary = summarize(study, store, prevalence=prevalence)
    similarity = study_similarity(summary, store)
    advice = load_advice(store, study.name) if study.start else None
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Study {html.escape(study.name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Study {html.escape(study.name)}</h1>",
        f"<p class='note'>Written {now()} from {html.escape(str(store.root))}. Cuts are chosen on validation "
        f"({html.escape(CRITERIA[study.criterion].words(study.operating_point))}); the test split is only reported. Intervals: paired stratified bootstrap, "
        "95%; p: DeLong's test of equal AUROC. A difference whose interval contains 0 is not significant.</p>",
        "<h2>Conclusions</h2><ul>",
        *(f"<li>{html.escape(c)}</li>" for c in summary["conclusions"]),
        "</ul>",
    ]
    if not summary["complete"]:
        parts.append("<p class='note'>The study is not complete: some groups are waiting for runs.</p>")
    parts.append("<h2>Selected cuts</h2>")
    parts.append(_groups_table(summary).to_html(index=False, escape=True))
    op_table = operating.table(summary)
    if not op_table.empty:
        parts.append("<h2>Calibration and operating point</h2>")
        rule = html.escape(study.operating_point)
        parts.append(
            f"<p class='note'>Each run's threshold is chosen on its own validation split by the rule {rule}; the test "
            "split is read at it. Values are selected cut / full fine-tuning (means over seeds); Δ: paired stratified "
            "bootstrap 95% interval over the test images; McNemar: exact test of the two models' decisions on the same "
            "images, per seed. PPV, NPV and flagged per 1,000 at "
            + html.escape(
                operating.prevalence_words(next(g for g in summary["groups"] if g.get("operating"))["operating"])
            )
            + ". Brier and ECE (15 equal-width bins) as trained and after temperature scaling fitted on validation."
            + html.escape(operating.undefined_note(op_table))
            + "</p>"
        )
        parts.append(op_table.to_html(index=False, escape=True))
    if advice:
        parts.append("<h2>Where the search started: the cut advisor</h2>")
        parts.append(
            "<p class='note'>For the pretrained initialisations, stage 1 of the search trained the cuts the advisor "
            "ranked first and the full network (random initialisations: every block). Scored before training on "
            "the training split: LogME evidence and a 5-fold logistic-regression probe on the pooled features at "
            "each cut.</p>"
        )
        names = {"logme": "LogME", "probe_auroc": "probe AUROC", "probe_auprc": "probe AUPRC"}
        for b, r in advice["backbones"].items():
            parts.append(
                f"<h3>{html.escape(b)} from {html.escape(r['init'])}: stage 1 started from "
                f"{html.escape(', '.join(study.start.get(b, ())))}; {r['n']} training images "
                f"({r['n_pos']} positive), {r['seconds']:.1f} s</h3>"
            )
            table = pd.DataFrame(r["cuts"])[["cut", "rank", "score", *names]].rename(columns=names)
            parts.append(table.to_html(index=False, float_format=lambda v: f"{v:.4g}"))
    parts.append("<h2>Figures</h2>")
    for k, (caption, fig) in enumerate(figures(study, store, summary, similarity)):
        parts.append(f"<h3>{html.escape(caption)}</h3>")
        # plotly.js inline once, with the first figure: the file works offline
        parts.append(fig.to_html(full_html=False, include_plotlyjs="inline" if k == 0 else False))
    if similarity:
        parts.append("<h2>Feature reuse per stage</h2>")
        parts.append(
            "<p class='note'>Linear CKA (Kornblith et al. 2019, unbiased HSIC) between each stage of the network "
            "before and after training, in brackets against an independently initialised random network; mean over "
            "seeds. High at the bottom and low at the top: the bottom is reused, the top re-learned.</p>"
        )
        parts.append(similarity_table(similarity).to_html(index=False, escape=True))
    runs = _study_runs(study, store)
    parts.append(f"<h2>Runs ({len(runs)})</h2>")
    if not runs.empty:
        metric_cols = [m.column for m in compare.METRICS.values() if m.table]
        wanted = ["id", "name", *metric_cols, "model.params", "model.macs", "model.latency_ms", "train.seconds"]
        cols = [c for c in wanted if c in runs.columns]
        names = {m.column: m.short for m in compare.METRICS.values()}
        parts.append(runs[cols].rename(columns=names).to_html(index=False, float_format=lambda v: f"{v:.4g}"))
        parts.append("<h3>Every run's config</h3>")
        for rid in runs["id"]:
            cfg = store.config(rid).to_json()
            parts.append(f"<details><summary>{html.escape(rid)}</summary><pre>{html.escape(cfg)}</pre></details>")
    parts.append("<h2>Study definition</h2>")
    parts.append(f"<pre>{html.escape(study.to_json())}</pre>")
    parts.append("<h2>Software and device</h2>")
    parts.append(pd.DataFrame(list(status().items()), columns=["", "version / value"]).to_html(index=False))
    parts.append(f"<script type='application/json' id='medtl-summary'>{_json_in_html(summary)}</script>")
    parts.append(f"<script type='application/json' id='medtl-similarity'>{_json_in_html(similarity)}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _json_in_html(obj) -> str:
    # "</" would end the script element early
    return json.dumps(obj, default=str).replace("</", "<\\/")


def write_report(study: StudyConfig, store: RunStore, out: str | Path, prevalence: float | None = None) -> Path:
    """Write the report to ``out`` and return its path."""
    p = Path(out).expanduser()
    if p.is_dir():
        raise IsADirectoryError(f"--out {p} is a folder: give a file name such as report.html")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(build_report(study, store, prevalence), encoding="utf-8")
    return p
