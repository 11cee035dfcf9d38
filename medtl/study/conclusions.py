"""A study's results: the selected cuts, paired comparisons on the test split, and sentences.

Choices come from :func:`medtl.study.search_state` (validation only); this module reads the test
predictions of the chosen and reference runs and compares them with :mod:`medtl.stats`, paired by
seed on the shared test images. A difference whose 95% interval contains 0 is called not significant.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from medtl import stats
from medtl.datasets import parse_train_size, train_size_label, train_size_words
from medtl.runs import DamagedRun, RunStore
from medtl.states import STATES
from medtl.strategies import FULL, get_strategy, reference
from medtl.study import operating
from medtl.study.config import StudyConfig
from medtl.study.criteria import CRITERIA
from medtl.study.search import _blockers, _cells, _damaged, search_state, val_score

N_BOOT = 1000


def _aligned(store: RunStore, run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index, y_true, y_score) of a run's test predictions, ordered by image index."""
    p = operating.aligned_predictions(store, run_id, "paired statistics need")
    return p["index"], p["y_true"], p["y_score"]


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
    store: RunStore,
    runs_a: list[str],
    runs_b: list[str],
    n_boot: int = N_BOOT,
    seeds: list[int] | None = None,
    prevalence: float | None = None,
) -> dict[str, Any]:
    """Run(s) A against run(s) B, paired row by row (e.g. by seed): differences with intervals and DeLong p.

    With several rows the differences are of the means over rows (pooled), and ``per_seed`` holds each
    row's own comparison; ``seeds_a``/``seeds_b`` the mean ± std of each metric over rows. ``prevalence``:
    AUPRC at that deployment prevalence (AUROC does not depend on it).
    """
    for a, b in zip(runs_a, runs_b, strict=True):
        check_same_test_set(store, a, b)
    check_same_test_set(store, runs_a[0], runs_a[-1])
    y = _aligned(store, runs_a[0])[1]
    sa = np.vstack([_aligned(store, r)[2] for r in runs_a])
    sb = np.vstack([_aligned(store, r)[2] for r in runs_b])
    out: dict[str, Any] = {}
    if len(runs_a) > 1:
        r = stats.paired_seeds(y, sa, sb, seeds=seeds, n_boot=n_boot, prevalence=prevalence)
        bs, p = r["pooled"], r["pooled"]["delong"]["p"]
        out["per_seed"] = [
            {"seed": x["seed"], "delta_auroc": x["auroc"], "delta_auprc": x["auprc"], "delong_p": x["delong_p"]}
            for x in r["per_seed"]
        ]
        out["seeds_a"], out["seeds_b"] = r["a"], r["b"]
    else:
        bs, p = stats.paired_bootstrap(y, sa, sb, n_boot=n_boot, prevalence=prevalence), stats.delong(y, sa, sb)["p"]
    r = {
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
    # with several seeds, training randomness too: the interval of the mean per-seed difference
    for m in ("auroc", "auprc"):
        if "per_seed" in r:
            d = stats.seed_interval(x[f"delta_{m}"]["value"] for x in r["per_seed"])
            d["ci"] = [max(d["ci"][0], -1.0), min(d["ci"][1], 1.0)]  # a difference of two AUCs lies in [-1, 1]
            r[f"seed_delta_{m}"] = d
    r["significant"] = {m: _significant(r, m) for m in ("auroc", "auprc")}
    return r


def _significant(r: dict, metric: str) -> bool:
    """Significant only when the test-image interval excludes 0 and, with several seeds, so does the
    interval over seeds (a bootstrap over one test set does not see training randomness)."""
    seeds = r.get(f"seed_delta_{metric}")
    return stats.significant(r[f"delta_{metric}"]["ci"]) and (seeds is None or stats.significant(seeds["ci"]))


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


def summarize(
    study: StudyConfig, store: RunStore, n_boot: int = N_BOOT, prevalence: float | None = None
) -> dict[str, Any]:
    """Everything ``study show`` and the report print: per group the selection, its comparison to full
    fine-tuning (threshold-free, and at the study's operating point with calibration: ``operating``) and its
    caveats; TL vs RI; backbones; the failed runs; the conclusions in words.

    ``prevalence``: the deployment prevalence of the PR-side numbers (default the study's; None: each test set's).
    """
    prevalence = study.prevalence if prevalence is None else prevalence
    done = store.experiments()
    latest = store.experiments(states=STATES)
    groups = []
    for g in search_state(study, store, done, latest):
        b, s, i, z = g["backbone"], g["strategy"], g["init"], g["size"]
        row = {**g, "size": train_size_label(z), "train_size": z}
        sel = g["selected"]
        if sel is not None:
            cut_runs = _runs(study, done, b, s, sel, i, z)
            full_runs = _runs(study, done, b, reference().name, FULL, i, z)
            seeds = [k for k in study.seeds if k in cut_runs and k in full_runs]
            row["seeds"] = seeds
            row["runs"] = {"selected": [cut_runs[k] for k in seeds], "full": [full_runs[k] for k in seeds]}
            sel_runs, full_runs_ = row["runs"]["selected"], row["runs"]["full"]
            try:
                if seeds:
                    vs = paired(store, sel_runs, full_runs_, n_boot, seeds, prevalence)
                    op = operating.compare(
                        store, sel_runs, full_runs_, study.operating_point, prevalence, n_boot, seeds
                    )
            except DamagedRun as e:  # a finished run's predictions cannot be read: the group waits for it
                seeds, row["blocked"] = [], {"failed": [_damaged(e)], "waiting": [], "not_queued": []}
            if seeds:
                row["vs_full"], row["operating"] = vs, op
                row["selected_test"] = {**row["vs_full"]["a"]}
                row["full_test"] = {**row["vs_full"]["b"]}
                row["selected_seeds"] = _seeds(store, row["runs"]["selected"])
                row["full_seeds"] = _seeds(store, row["runs"]["full"])
                row["model"] = {
                    "selected": _model(store, row["runs"]["selected"]),
                    "full": _model(store, row["runs"]["full"]),
                }
            elif not row.get("blocked"):  # the reference (full fine-tuning) is what is missing
                ref = _cells(study, store, done, b, reference().name, i, z, [FULL])
                row["blocked"] = _blockers(store, list(ref.values()), latest)
        row["caveats"] = group_caveats(study, store, row)
        groups.append(row)
    tl = _tl_vs_ri(study, store, done, groups, n_boot, prevalence)
    out = {
        "study": study.name,
        "criterion": study.criterion,
        "operating_point": study.operating_point,
        "prevalence": prevalence,
        "groups": groups,
        "tl_vs_ri": tl,
    }
    out["backbones"] = _backbones(study, store, done, n_boot, prevalence)
    out["failed"] = _failed(groups)
    out["conclusions"] = conclusions(study, out)
    out["complete"] = all(g["selected"] is not None and g.get("vs_full") for g in groups)
    return out


def _failed(groups: list[dict]) -> list[dict]:
    """Every failed, cancelled or interrupted run the study still needs, once, with its reason."""
    seen: dict[str, dict] = {}
    for g in groups:
        for f in (g.get("blocked") or {}).get("failed", []):
            seen.setdefault(f["run"], {**f, "backbone": g["backbone"], "init": g["init"], "size": g["size"]})
    return list(seen.values())


def _tl_vs_ri(study, store, done, groups, n_boot, prevalence=None) -> list[dict]:
    """ImageNet against random initialisation per (backbone, strategy, size): full fine-tuning and the selected cuts."""
    if not {"imagenet", "random"} <= set(study.inits):
        return []
    out = []
    for b in study.backbones:
        for z in study.train_sizes:
            pairs = [(reference().name, FULL, FULL)]
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
                    try:
                        r = paired(store, [ra[k] for k in seeds], [rb[k] for k in seeds], n_boot, seeds, prevalence)
                    except DamagedRun:  # said where the group lists its runs; this comparison waits
                        continue
                    r["caveats"] = comparison_caveats(r, "ImageNet init", "random init")
                    out.append(
                        {
                            "backbone": b,
                            "strategy": s,
                            "size": train_size_label(z),
                            "cut_tl": cut_tl,
                            "cut_ri": cut_ri,
                            **r,
                        }
                    )
    return out


def _backbones(study, store, done, n_boot, prevalence=None) -> list[dict]:
    """Full fine-tuning of each backbone against the one best on validation, per (init, size)."""
    if len(study.backbones) < 2:
        return []
    out = []
    for i in study.inits:
        for z in study.train_sizes:
            runs = {
                b: _runs(study, done, b, reference().name, FULL, i, z)
                for b in study.backbones
                if i in study.inits_for(b)
            }
            runs = {b: r for b, r in runs.items() if r}
            if len(runs) < 2:
                continue
            try:
                val = {
                    b: float(np.mean([val_score(store, x, study.criterion, study.operating_point) for x in r.values()]))
                    for b, r in runs.items()
                }
            except ValueError:  # a damaged run, or no validation predictions for an operating-point criterion
                continue
            best = max(val, key=val.get)
            for b in runs:
                if b == best:
                    continue
                seeds = [k for k in study.seeds if k in runs[best] and k in runs[b]]
                try:
                    r = paired(
                        store, [runs[best][k] for k in seeds], [runs[b][k] for k in seeds], n_boot, seeds, prevalence
                    )
                except DamagedRun:
                    continue
                model = {x: _model(store, list(runs[x].values())) for x in (best, b)}
                r["caveats"] = comparison_caveats(r, best, b)
                out.append({"init": i, "size": train_size_label(z), "best": best, "other": b, "model": model, **r})
    return out


# --- caveats --------------------------------------------------------------------------------------

MIN_VAL_CLASS = 20  # fewer validation positives (or negatives) than this: a choice on validation is fragile


def _label_cut(cut: str) -> str:
    return "full fine-tuning" if cut == FULL else cut


def _interval_text(d: dict) -> str:
    return f"{d['value']:.3f} [{d['ci'][0]:.3f}, {d['ci'][1]:.3f}]"


def comparison_caveats(r: dict, label_a: str, label_b: str) -> list[dict]:
    """Caveats of a paired comparison: ``single_seed`` (or ``few_seeds``: two) and ``below_chance`` (a
    compared model whose test AUROC interval contains 0.5 did not learn detectably)."""
    out = []
    if r.get("rows", 1) < 2:
        out.append(
            {
                "code": "single_seed",
                "text": "one seed: the intervals and p-values cover the sampling of test images only, not training "
                "randomness (another seed may rank the models differently); train at least 3 seeds",
            }
        )
    elif r.get("rows", 1) == 2:
        out.append(
            {
                "code": "few_seeds",
                "text": "two seeds: the interval over seeds is a t interval with one degree of freedom, so wide that "
                "no difference can be significant across seeds; train at least 3 seeds (5 to be confident)",
            }
        )
    chance = [(lbl, r[part]["auroc"]) for part, lbl in (("a", label_a), ("b", label_b))]
    chance = [(lbl, a) for lbl, a in chance if a["ci"][0] <= 0.5 <= a["ci"][1]]
    if chance:
        who = "neither model learned" if len(chance) == 2 else f"{chance[0][0]} did not learn"
        out.append(
            {
                "code": "below_chance",
                "models": [lbl for lbl, _ in chance],
                "text": f"{who} detectably: test AUROC "
                + " and ".join(f"{_interval_text(a)} ({lbl})" for lbl, a in chance)
                + (" contains" if len(chance) == 1 else " contain")
                + " 0.5, chance; a difference between them says nothing about transfer",
            }
        )
    return out


def group_caveats(study: StudyConfig, store: RunStore, g: dict) -> list[dict]:
    """What limits a decided group's conclusion: ``single_seed`` / ``few_seeds``, ``val_tie``, ``small_val``,
    ``below_chance``."""
    if g["selected"] is None:
        return []
    out = []
    crit = CRITERIA[study.criterion].words(study.operating_point).removeprefix("validation ")
    tie = g.get("tie") or {}
    if tie.get("tied"):
        from medtl.models.registry import cut_stages

        depth = cut_stages(g["backbone"])
        cuts = sorted([tie["best"], *tie["tied"]], key=lambda c: depth.get(c, 0))  # bottom of the network first
        values = ", ".join(f"{_label_cut(c)} {abs(g['val'][c]):.3f}" for c in cuts)
        how = (
            "within the noise of the validation images (the paired bootstrap 95% interval of each difference "
            "to the best contains 0)"
            if tie["method"] == "bootstrap"
            else "equal to 3 decimals (some runs kept no validation predictions, so the noise could not be judged)"
        )
        chosen = _label_cut(tie["chosen"])
        text = f"validation {crit} cannot tell {', '.join(map(_label_cut, cuts))} apart ({values}; {how}): "
        text += f"the tie is broken toward the smaller network, {chosen}"
        if tie["chosen"] != tie["best"]:
            text += f" ({_label_cut(tie['best'])} scored highest)"
        out.append({"code": "val_tie", "cuts": cuts, "chosen": tie["chosen"], "method": tie["method"], "text": text})
    counts = [((store.metrics(r) or {}).get("data") or {}).get("counts", {}).get("val") for r in _group_runs(g)]
    counts = [c for c in counts if c]
    if counts:
        pos = min(int(c["n_pos"]) for c in counts)
        neg = min(int(c["n"] - c["n_pos"]) for c in counts)
        n = min(int(c["n"]) for c in counts)
        if min(pos, neg) < MIN_VAL_CLASS:
            out.append(
                {
                    "code": "small_val",
                    "n_val": n,
                    "n_pos": pos,
                    "n_neg": neg,
                    "text": f"the cut was chosen on {n} validation images ({pos} positive, {neg} negative): with fewer "
                    f"than {MIN_VAL_CLASS} of a class, validation cannot rank cuts reliably (more data, or a larger "
                    "training size, which also sizes validation)",
                }
            )
    if g.get("vs_full"):
        out += comparison_caveats(g["vs_full"], _label_cut(g["selected"]), "full fine-tuning")
    return out


def _group_runs(g: dict) -> list[str]:
    return [*(g.get("runs") or {}).get("selected", [])]


# --- words -----------------------------------------------------------------------------------------


def _diff(r: dict, metric: str) -> str:
    """``+0.012 [-0.004, +0.030]`` (test images), with the interval over seeds where there are several,
    and ``not significant`` unless both exclude 0."""
    d = r[f"delta_{metric}"]
    lo, hi = d["ci"]
    text = f"{d['value']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
    seeds = r.get(f"seed_delta_{metric}")
    if seeds is not None:
        text += f", over seeds [{seeds['ci'][0]:+.3f}, {seeds['ci'][1]:+.3f}]"
    return text + ("" if r["significant"][metric] else ", not significant")


def _both(r: dict, label_b: str) -> str:
    """Both metrics, always: AUPRC then AUROC, each with its paired interval; DeLong's p for AUROC."""
    return (
        f"AUPRC {r['a']['auprc']['value']:.3f} vs {r['b']['auprc']['value']:.3f} for {label_b}: {_diff(r, 'auprc')}; "
        f"AUROC {r['a']['auroc']['value']:.3f} vs {r['b']['auroc']['value']:.3f}: {_diff(r, 'auroc')}, "
        f"p {_p(r['delong_p'])} (DeLong, AUROC, test images)"
    )


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _seed_words(n: int) -> str:
    return f"mean over {n} seed{'s' if n != 1 else ''}"


def _blocked_words(g: dict) -> str:
    """Why an undecided group is undecided: failed runs (named, with the first reason), runs waiting, runs never queued."""
    if g.get("error"):
        return f"cannot be decided: {g['error']}"
    b = g.get("blocked") or {}
    stage = " of stage 2 of the search" if g.get("stage1_best") else ""
    failed, waiting, missing = b.get("failed", []), b.get("waiting", []), b.get("not_queued", [])
    if failed:
        first = failed[0]
        what = ", ".join(f"{_label_cut(f['cut'])} seed {f['seed']} ({f['state']})" for f in failed[:4])
        more = f" and {len(failed) - 4} more" if len(failed) > 4 else ""
        return (
            f"cannot be decided: {len(failed)} run(s){stage} did not finish: {what}{more}. "
            f"Run {first['run']}: {first['error']}. Retry them (Retry on the Study page, or "
            "python -m medtl runs resume RUN_ID)"
        )
    if waiting:
        return f"not decided yet: waiting for {len(waiting)} run(s){stage} (queued or running)"
    if missing:
        return f"not decided yet: {len(missing)} run(s){stage} not queued yet (queue the study, or run it again)"
    return "not decided yet"


def conclusions(study: StudyConfig, summary: dict) -> list[str]:
    """The study's findings as sentences (both metrics, paired intervals, DeLong p) with their caveats.

    A caveat every decided group shares (one seed) is said once, first; the others follow their group's
    sentence as indented lines starting ``Caveat:``.
    """
    out = []
    if summary.get("prevalence") is not None:
        out.append(
            f"AUPRC, PPV, NPV, positives flagged and net benefit are at a deployment prevalence of "
            f"{summary['prevalence']:.1%} (the test images' negatives re-weighted); AUROC, sensitivity and "
            "specificity do not depend on prevalence."
        )
    decided = [g for g in summary["groups"] if g.get("vs_full")]
    common = set()
    for code in ("single_seed", "few_seeds"):  # said once when every decided group has it
        if decided and all(any(c["code"] == code for c in g["caveats"]) for g in decided):
            common.add(code)
            text = next(c["text"] for c in decided[0]["caveats"] if c["code"] == code)
            out.append(f"Every comparison below uses {text}.")
    for g in summary["groups"]:
        head = f"With {train_size_words(g['size'])} ({g['init']} init, {g['backbone']})"
        if g["selected"] is None or not g.get("vs_full") and g.get("blocked"):
            out.append(f"{head}: {g['strategy']} {_blocked_words(g)}.")
            continue
        if not g.get("vs_full"):
            out.append(
                f"{head}: {g['strategy']}@{g['selected']} was chosen, but full fine-tuning has no finished runs to compare."
            )
            continue
        n_seeds = len(g["seeds"])
        how = f"chosen on {CRITERIA[study.criterion].words(study.operating_point)}"
        started = study.started(g["backbone"], g["init"])
        if study.cuts == "search" and started:
            how += f"; stage 1 started from the advisor's {', '.join(started)}"
        if study.cuts == "search" and g["stage2"]:
            how += f"; stage 1 picked {g['stage1_best']}, stage 2 searched {', '.join(g['stage2'])}"
        if g["selected"] == FULL:
            t = g["full_test"]
            out.append(
                f"{head}: full fine-tuning is the best cut on validation ({how}): "
                f"test AUPRC {t['auprc']['value']:.3f}, AUROC {t['auroc']['value']:.3f} ({_seed_words(n_seeds)})."
            )
            if g.get("operating"):
                out += operating.words(g["operating"], "full fine-tuning", None)
        else:
            out.append(
                f"{head}, {get_strategy(g['strategy']).at(g['backbone'], g['selected'])} ({how}) gives "
                f"{_both(g['vs_full'], 'full fine-tuning')} ({_seed_words(n_seeds)}, n = {g['vs_full']['n']} test images)."
            )
            m = g.get("model", {})
            sel, full = m.get("selected", {}), m.get("full", {})
            if sel.get("params") and full.get("params"):
                out.append(
                    f"  Size/speed: {g['selected']} keeps {sel['params'] / 1e6:.2f} M of {full['params'] / 1e6:.2f} M parameters "
                    f"({sel['params'] / full['params']:.0%}), {sel.get('macs', 0) / 1e6:.0f} vs {full.get('macs', 0) / 1e6:.0f} M MACs, "
                    f"latency {sel.get('latency_ms', float('nan')):.2f} vs {full.get('latency_ms', float('nan')):.2f} ms/image."
                )
            if g.get("operating"):
                out += operating.words(g["operating"], g["selected"], "full fine-tuning")
        out += [f"  Caveat: {c['text']}." for c in g["caveats"] if c["code"] not in common]
    out += _data_poor(summary)
    for r in summary["tl_vs_ri"]:
        what = (
            "full fine-tuning"
            if get_strategy(r["strategy"]).reference
            else f"{r['strategy']} at the selected cuts ({r['cut_tl']} vs {r['cut_ri']})"
        )
        out.append(
            f"ImageNet vs random init, {r['backbone']} {what}, with {train_size_words(r['size'])}: {_both(r, 'random init')}."
        )
        out += [f"  Caveat: {c['text']}." for c in r.get("caveats", []) if c["code"] not in common]
    for r in summary.get("backbones", []):
        mb, mo = r["model"][r["best"]], r["model"][r["other"]]
        size = ""
        if mb.get("params") and mo.get("params"):
            size = (
                f" Size/speed: {mb['params'] / 1e6:.2f} M vs {mo['params'] / 1e6:.2f} M parameters, "
                f"latency {mb.get('latency_ms', float('nan')):.2f} vs {mo.get('latency_ms', float('nan')):.2f} ms/image."
            )
        out.append(
            f"With {train_size_words(r['size'])} ({r['init']} init), full fine-tuning of {r['best']} (best on validation) vs "
            f"{r['other']}: {_both(r, r['other'])}.{size}"
        )
        out += [f"  Caveat: {c['text']}." for c in r.get("caveats", []) if c["code"] not in common]
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
            f"{_diff(g['vs_full'], 'auprc')} AUPRC / {_diff(g['vs_full'], 'auroc')} AUROC at {g['size']} ({g['selected']})"
            for g in gs
        ]
        small = min(gs, key=lambda g: _size_key(g["size"]))
        large = max(gs, key=lambda g: _size_key(g["size"]))
        d_small, d_large = small["vs_full"]["delta_auprc"]["value"], large["vs_full"]["delta_auprc"]["value"]
        trend = "larger" if d_small > d_large else "smaller" if d_small < d_large else "the same"
        either = small["vs_full"]["significant"]["auprc"] or large["vs_full"]["significant"]["auprc"]
        hedge = "" if either else " (neither difference is significant: this trend may be noise)"
        out.append(
            f"Data-poor effect ({b}, {s}, {i} init): gain of the selected cut over full fine-tuning: {'; '.join(parts)}. "
            f"With the least data the AUPRC gain is {trend} than with the most{hedge}."
        )
    return out


def _size_key(label: str) -> float:
    """Order of training sizes (from their labels): fractions, counts, then all the data."""
    size = parse_train_size(label)
    return math.inf if size is None else size
