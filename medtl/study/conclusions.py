"""A study's results: the selected cuts, paired comparisons on the test split, and sentences.

Choices come from :func:`medtl.study.search_state` (validation only); this module reads the test
predictions of the chosen and reference runs and compares them with :mod:`medtl.stats`, paired by
seed on the shared test images. A difference whose 95% interval contains 0 is called not significant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medtl import stats
from medtl.compare import size_label
from medtl.runs import RunStore
from medtl.strategies import FULL
from medtl.study.config import StudyConfig
from medtl.study.search import search_state, val_score

N_BOOT = 1000


def _aligned(store: RunStore, run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index, y_true, y_score) of a run's test predictions, ordered by image index."""
    p = store.predictions(run_id)
    if p is None:
        raise FileNotFoundError(f"Run {run_id} has no predictions.npz")
    if np.asarray(p["y_true"]).ndim != 1:
        raise ValueError(f"Run {run_id} is multi-label: paired statistics need one binary target")
    order = np.argsort(p["index"], kind="stable")
    return p["index"][order], p["y_true"][order], p["y_score"][order]


def check_same_test_set(store: RunStore, run_a: str, run_b: str) -> None:
    """Raise ValueError unless both runs were scored on the same test images and labels."""
    ka, kb = store.config(run_a).data.test_split_key(), store.config(run_b).data.test_split_key()
    if ka != kb:
        raise ValueError(
            f"Runs {run_a} and {run_b} use different test sets (their data settings differ beyond training size "
            "and seed): paired statistics need the same test images"
        )
    ia, ya, _ = _aligned(store, run_a)
    ib, yb, _ = _aligned(store, run_b)
    if not np.array_equal(ia, ib) or not np.array_equal(ya, yb):
        raise ValueError(f"Runs {run_a} and {run_b} have different test images in predictions.npz: nothing to pair")


def paired(
    store: RunStore, runs_a: list[str], runs_b: list[str], n_boot: int = N_BOOT, seeds: list[int] | None = None
) -> dict[str, Any]:
    """Run(s) A against run(s) B, paired row by row (e.g. by seed): differences with intervals and DeLong p.

    With several rows the differences are of the means over rows (pooled), and ``per_seed`` holds each
    row's own comparison; ``seeds_a``/``seeds_b`` the mean ± std of each metric over rows.
    """
    for a, b in zip(runs_a, runs_b, strict=True):
        check_same_test_set(store, a, b)
    check_same_test_set(store, runs_a[0], runs_a[-1])
    y = _aligned(store, runs_a[0])[1]
    sa = np.vstack([_aligned(store, r)[2] for r in runs_a])
    sb = np.vstack([_aligned(store, r)[2] for r in runs_b])
    out: dict[str, Any] = {}
    if len(runs_a) > 1:
        r = stats.paired_seeds(y, sa, sb, seeds=seeds, n_boot=n_boot)
        bs, p = r["pooled"], r["pooled"]["delong"]["p"]
        out["per_seed"] = [
            {"seed": x["seed"], "delta_auroc": x["auroc"], "delta_auprc": x["auprc"], "delong_p": x["delong_p"]}
            for x in r["per_seed"]
        ]
        out["seeds_a"], out["seeds_b"] = r["a"], r["b"]
    else:
        bs, p = stats.paired_bootstrap(y, sa, sb, n_boot=n_boot), stats.delong(y, sa, sb)["p"]
    return {
        "a": {m: bs[m]["a"] for m in ("auroc", "auprc")},
        "b": {m: bs[m]["b"] for m in ("auroc", "auprc")},
        "delta_auroc": bs["auroc"]["delta"],
        "delta_auprc": bs["auprc"]["delta"],
        "delong_p": p,
        "n": int(y.size),
        "n_pos": int(y.sum()),
        "rows": len(runs_a),
        **out,
    }


def _model(store: RunStore, runs: list[str]) -> dict[str, float]:
    ms = [(store.metrics(r) or {}).get("model", {}) for r in runs]
    return {k: float(np.mean([m[k] for m in ms])) for k in ("params", "macs", "latency_ms") if all(k in m for m in ms)}


def _seeds(store: RunStore, runs: list[str]) -> dict[str, dict]:
    ts = [(store.metrics(r) or {}).get("test", {}) for r in runs]
    return {m: stats.seed_summary(t[m] for t in ts) for m in ("auroc", "auprc")}


def _runs(study: StudyConfig, done: dict[str, str], b, s, c, i, z) -> dict[int, str]:
    out = {}
    for seed in study.seeds:
        rid = done.get(study.run_config(b, s, c, i, z, seed).key())
        if rid:
            out[seed] = rid
    return out


def summarize(study: StudyConfig, store: RunStore, n_boot: int = N_BOOT) -> dict[str, Any]:
    """Everything ``study show`` and the report print: per group the selection and its comparison to
    full fine-tuning, TL vs RI, and the conclusions in words."""
    done = store.experiments()
    groups = []
    for g in search_state(study, store, done):
        b, s, i, z = g["backbone"], g["strategy"], g["init"], g["size"]
        row = {**g, "size": size_label(z), "train_size": z}
        sel = g["selected"]
        if sel is not None:
            cut_runs = _runs(study, done, b, s, sel, i, z)
            full_runs = _runs(study, done, b, "finetune", FULL, i, z)
            seeds = [k for k in study.seeds if k in cut_runs and k in full_runs]
            row["seeds"] = seeds
            row["runs"] = {"selected": [cut_runs[k] for k in seeds], "full": [full_runs[k] for k in seeds]}
            if seeds:
                row["vs_full"] = paired(store, row["runs"]["selected"], row["runs"]["full"], n_boot, seeds)
                row["selected_test"] = {**row["vs_full"]["a"]}
                row["full_test"] = {**row["vs_full"]["b"]}
                row["selected_seeds"] = _seeds(store, row["runs"]["selected"])
                row["full_seeds"] = _seeds(store, row["runs"]["full"])
                row["model"] = {
                    "selected": _model(store, row["runs"]["selected"]),
                    "full": _model(store, row["runs"]["full"]),
                }
        groups.append(row)
    tl = _tl_vs_ri(study, store, done, groups, n_boot)
    out = {"study": study.name, "criterion": study.criterion, "groups": groups, "tl_vs_ri": tl}
    out["backbones"] = _backbones(study, store, done, n_boot)
    out["conclusions"] = conclusions(study, out)
    out["complete"] = all(g["selected"] is not None and g.get("vs_full") for g in groups)
    return out


def _tl_vs_ri(study, store, done, groups, n_boot) -> list[dict]:
    """ImageNet against random initialisation per (backbone, strategy, size): full fine-tuning and the selected cuts."""
    if not {"imagenet", "random"} <= set(study.inits):
        return []
    out = []
    for b in study.backbones:
        for z in study.train_sizes:
            pairs = [("finetune", FULL, FULL)]
            for s in study.strategies:
                sel = {
                    g["init"]: g["selected"]
                    for g in groups
                    if (g["backbone"], g["strategy"], g["train_size"]) == (b, s, z) and g["selected"]
                }
                if len(sel) == 2:
                    pairs.append((s, sel["imagenet"], sel["random"]))
            for s, cut_tl, cut_ri in pairs:
                ra = _runs(study, done, b, s, cut_tl, "imagenet", z)
                rb = _runs(study, done, b, s, cut_ri, "random", z)
                seeds = [k for k in study.seeds if k in ra and k in rb]
                if seeds:
                    r = paired(store, [ra[k] for k in seeds], [rb[k] for k in seeds], n_boot, seeds)
                    out.append(
                        {"backbone": b, "strategy": s, "size": size_label(z), "cut_tl": cut_tl, "cut_ri": cut_ri, **r}
                    )
    return out


def _backbones(study, store, done, n_boot) -> list[dict]:
    """Full fine-tuning of each backbone against the one best on validation, per (init, size)."""
    if len(study.backbones) < 2:
        return []
    out = []
    for i in study.inits:
        for z in study.train_sizes:
            runs = {
                b: _runs(study, done, b, "finetune", FULL, i, z) for b in study.backbones if i in study.inits_for(b)
            }
            runs = {b: r for b, r in runs.items() if r}
            if len(runs) < 2:
                continue
            val = {
                b: float(np.mean([val_score(store, x, study.criterion) for x in r.values()])) for b, r in runs.items()
            }
            best = max(val, key=val.get)
            for b in runs:
                if b == best:
                    continue
                seeds = [k for k in study.seeds if k in runs[best] and k in runs[b]]
                r = paired(store, [runs[best][k] for k in seeds], [runs[b][k] for k in seeds], n_boot, seeds)
                model = {x: _model(store, list(runs[x].values())) for x in (best, b)}
                out.append({"init": i, "size": size_label(z), "best": best, "other": b, "model": model, **r})
    return out


# --- words -----------------------------------------------------------------------------------------


def _diff(d: dict) -> str:
    lo, hi = d["ci"]
    word = "" if stats.significant(d["ci"]) else ", not significant"
    return f"{d['value']:+.3f} [{lo:+.3f}, {hi:+.3f}]{word}"


def _both(r: dict, label_a: str, label_b: str) -> str:
    """Both metrics, always: AUPRC then AUROC, each with its paired interval; DeLong's p for AUROC."""
    return (
        f"AUPRC {r['a']['auprc']['value']:.3f} vs {r['b']['auprc']['value']:.3f} for {label_b}: {_diff(r['delta_auprc'])}; "
        f"AUROC {r['a']['auroc']['value']:.3f} vs {r['b']['auroc']['value']:.3f}: {_diff(r['delta_auroc'])}, "
        f"p {_p(r['delong_p'])} (DeLong, AUROC)"
    )


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _where(s: str, cut: str, backbone: str) -> str:
    verbs = {
        "truncate": f"truncating {backbone} at {cut}",
        "freeze": f"freezing {backbone} up to {cut}",
        "transfusion": f"keeping {backbone}'s pretrained layers up to {cut} (Transfusion)",
        "linear": f"a linear probe on {backbone} at {cut}",
    }
    return verbs.get(s, f"{backbone} {s}@{cut}")


def _size_words(size: str) -> str:
    return (
        "all the training data"
        if size == "100%"
        else f"{size} of the training data"
        if size.endswith("%")
        else f"{size} training images"
    )


def conclusions(study: StudyConfig, summary: dict) -> list[str]:
    """The study's findings as sentences (both metrics, paired intervals, DeLong p)."""
    out = []
    seeds = f"mean over {len(study.seeds)} seed{'s' if len(study.seeds) > 1 else ''}"
    for g in summary["groups"]:
        head = f"With {_size_words(g['size'])} ({g['init']} init, {g['backbone']})"
        if g["selected"] is None:
            what = "stage 2 of the search" if g["stage1_best"] else "its runs"
            out.append(f"{head}: {g['strategy']} is not decided yet: waiting for {what}.")
            continue
        if not g.get("vs_full"):
            out.append(
                f"{head}: {g['strategy']}@{g['selected']} was chosen, but full fine-tuning has no finished runs to compare."
            )
            continue
        how = f"chosen on validation {study.criterion.removeprefix('val_').upper()}"
        started = study.started(g["backbone"], g["init"])
        if study.cuts == "search" and started:
            how += f"; stage 1 started from the advisor's {', '.join(started)}"
        if study.cuts == "search" and g["stage2"]:
            how += f"; stage 1 picked {g['stage1_best']}, stage 2 searched {', '.join(g['stage2'])}"
        if g["selected"] == FULL:
            t = g["full_test"]
            out.append(
                f"{head}: full fine-tuning is the best cut on validation ({how}): "
                f"test AUPRC {t['auprc']['value']:.3f}, AUROC {t['auroc']['value']:.3f} ({seeds})."
            )
            continue
        out.append(
            f"{head}, {_where(g['strategy'], g['selected'], g['backbone'])} ({how}) gives "
            f"{_both(g['vs_full'], '', 'full fine-tuning')} ({seeds}, n = {g['vs_full']['n']} test images)."
        )
        m = g.get("model", {})
        sel, full = m.get("selected", {}), m.get("full", {})
        if sel.get("params") and full.get("params"):
            out.append(
                f"  Size/speed: {g['selected']} keeps {sel['params'] / 1e6:.2f} M of {full['params'] / 1e6:.2f} M parameters "
                f"({sel['params'] / full['params']:.0%}), {sel.get('macs', 0) / 1e6:.0f} vs {full.get('macs', 0) / 1e6:.0f} M MACs, "
                f"latency {sel.get('latency_ms', float('nan')):.2f} vs {full.get('latency_ms', float('nan')):.2f} ms/image."
            )
    out += _data_poor(summary)
    for r in summary["tl_vs_ri"]:
        what = (
            "full fine-tuning"
            if r["strategy"] == "finetune"
            else f"{r['strategy']} at the selected cuts ({r['cut_tl']} vs {r['cut_ri']})"
        )
        out.append(
            f"ImageNet vs random init, {r['backbone']} {what}, with {_size_words(r['size'])}: "
            f"{_both(r, 'ImageNet', 'random init')}."
        )
    for r in summary.get("backbones", []):
        mb, mo = r["model"][r["best"]], r["model"][r["other"]]
        size = ""
        if mb.get("params") and mo.get("params"):
            size = (
                f" Size/speed: {mb['params'] / 1e6:.2f} M vs {mo['params'] / 1e6:.2f} M parameters, "
                f"latency {mb.get('latency_ms', float('nan')):.2f} vs {mo.get('latency_ms', float('nan')):.2f} ms/image."
            )
        out.append(
            f"With {_size_words(r['size'])} ({r['init']} init), full fine-tuning of {r['best']} (best on validation) vs "
            f"{r['other']}: {_both(r, r['best'], r['other'])}.{size}"
        )
    return out


def _data_poor(summary: dict) -> list[str]:
    """How the gain of the selected cut over full fine-tuning changes with the training size."""
    by: dict[tuple, list[dict]] = {}
    for g in summary["groups"]:
        if g.get("vs_full"):
            by.setdefault((g["backbone"], g["strategy"], g["init"]), []).append(g)
    out = []
    for (b, s, i), gs in by.items():
        if len(gs) < 2:
            continue
        parts = [
            f"{_diff(g['vs_full']['delta_auprc'])} AUPRC / {_diff(g['vs_full']['delta_auroc'])} AUROC at {g['size']} ({g['selected']})"
            for g in gs
        ]
        small = min(gs, key=lambda g: _size_key(g["size"]))
        large = max(gs, key=lambda g: _size_key(g["size"]))
        d_small, d_large = small["vs_full"]["delta_auprc"]["value"], large["vs_full"]["delta_auprc"]["value"]
        trend = "larger" if d_small > d_large else "smaller" if d_small < d_large else "the same"
        out.append(
            f"Data-poor effect ({b}, {s}, {i} init): gain of the selected cut over full fine-tuning: {'; '.join(parts)}. "
            f"With the least data the AUPRC gain is {trend} than with the most."
        )
    return out


def _size_key(label: str) -> float:
    return float(label[:-1]) / 100 if label.endswith("%") else float("inf") if label == "100%" else float(label)
