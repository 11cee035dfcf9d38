"""``compare RUN_A RUN_B``: paired statistics of two runs on the same test images (bootstrap, DeLong,
the operating point chosen on validation, calibration)."""

from __future__ import annotations

import argparse
import json

from medtl.cli.runs import _runs_dir_arg, fmt_ci, operating_point_arg, prevalence_arg


def compare_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default %(default)s)")
    p.add_argument("--json", action="store_true")
    operating_point_arg(p, "sensitivity:0.9")
    prevalence_arg(p)
    _runs_dir_arg(p)


def compare_run(a: argparse.Namespace) -> int:
    from medtl.metrics import METRICS, check_prevalence
    from medtl.runs import RunStore
    from medtl.study import operating
    from medtl.study.conclusions import paired

    if a.n_boot < 1:
        raise ValueError(f"--n-boot must be at least 1. Got {a.n_boot}")
    if a.prevalence is not None:
        check_prevalence(a.prevalence)
    store = RunStore(a.runs_dir)
    r = paired(store, [a.run_a], [a.run_b], a.n_boot)
    out = {
        "run_a": a.run_a,
        "run_b": a.run_b,
        "auroc_a": r["a"]["auroc"],
        "auroc_b": r["b"]["auroc"],
        "auprc_a": r["a"]["auprc"],
        "auprc_b": r["b"]["auprc"],
        "delta_auroc": r["delta_auroc"],
        "delta_auprc": r["delta_auprc"],
        "delong_p": r["delong_p"],
        "n": r["n"],
        "n_pos": r["n_pos"],
    }
    if a.prevalence is not None:
        rp = paired(store, [a.run_a], [a.run_b], a.n_boot, prevalence=a.prevalence)
        out["prevalence"] = a.prevalence
        out["auprc_at_prevalence"] = {"a": rp["a"]["auprc"], "b": rp["b"]["auprc"], "delta": rp["delta_auprc"]}
    op = operating.compare(store, [a.run_a], [a.run_b], a.operating_point, a.prevalence, a.n_boot)
    keep = (
        "available",
        "rule",
        "label",
        "prevalence",
        "prevalence_is_test",
        "reason",
        "thresholds",
        "mcnemar",
        "metrics",
    )
    out["operating_point"] = {k: op[k] for k in keep if k in op}
    out["calibration"] = op["calibration"]
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"A = {a.run_a}: {store.config(a.run_a).name}\nB = {a.run_b}: {store.config(a.run_b).name}")
    print(f"n = {out['n']} test images ({out['n_pos']} positive), paired stratified bootstrap 95% intervals")
    for m in ("auroc", "auprc"):
        print(
            f"  {m.upper():6} A {fmt_ci(out[m + '_a'])}  B {fmt_ci(out[m + '_b'])}  A - B {fmt_ci(out['delta_' + m])}"
        )
    if "auprc_at_prevalence" in out:
        d = out["auprc_at_prevalence"]
        print(
            f"  AUPRC at {a.prevalence:.1%} prevalence: A {fmt_ci(d['a'])}  B {fmt_ci(d['b'])}  A - B {fmt_ci(d['delta'])}"
        )
    print(f"  DeLong test of equal AUROC: p = {out['delong_p']:.4g}")
    if op["available"]:
        t = op["thresholds"]
        print(
            f"at {op['label']}, chosen on each run's validation split (thresholds A {t['a'][0]:.4g}, B {t['b'][0]:.4g}):"
        )
        for key, d in op["metrics"].items():
            rec = METRICS[key]
            at = f" at {op['prevalence']:.1%}" if rec.prevalence and not op["prevalence_is_test"] else ""
            fmt = ".1f" if rec.fmt == ".0f" else ".3f"
            print(
                f"  {(rec.short + at):22} A {fmt_ci(d['a'], fmt)}  B {fmt_ci(d['b'], fmt)}  A - B {fmt_ci(d['delta'], fmt)}"
            )
        mc = op["mcnemar"][0]
        print(
            f"  McNemar exact test: {mc['a_only']} images only A gets right, {mc['b_only']} only B: p = {mc['p']:.4g}"
        )
    else:
        print(f"at {op['label']}: {op['reason']}")
    c = op["calibration"]
    print(
        f"calibration: Brier A {fmt_ci(c['brier']['a'])}  B {fmt_ci(c['brier']['b'])}; "
        f"ECE A {fmt_ci(c['ece']['a'])}  B {fmt_ci(c['ece']['b'])}"
    )
    return 0
