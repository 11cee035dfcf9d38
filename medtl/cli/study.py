"""``study``, ``compare`` and ``report``: run a study, read its conclusions, compare two runs, share a report."""

from __future__ import annotations

import argparse
import json
import sys

from medtl import initialisations
from medtl.cli.runs import _runs_dir_arg, fmt_ci
from medtl.datasets import KINDS
from medtl.strategies import reference
from medtl.study.presets import PRESETS

STUDY_LISTS = {  # flag -> StudyConfig axis (comma-separated values)
    "backbone": "backbones",
    "strategy": "strategies",
    "init": "inits",
    "train_size": "train_sizes",
    "seed": "seeds",
}


def study_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("run", "show", "plan"), help="run (train what is missing), show, or plan")
    p.add_argument("name", nargs="?", help="a saved study's name (show, plan; run: start from it)")
    p.add_argument(
        "--preset",
        help=("start from a preset: " + "; ".join(f"{p.name} ({p.help})" for p in PRESETS.values())).replace("%", "%%"),
    )
    p.add_argument(
        "--name",
        dest="new_name",
        help="save the study under this name (default: the preset's); without --preset, a saved study of that "
        "name is started from, else the defaults",
    )
    p.add_argument(
        "--dataset",
        help=", ".join(k.spec for k in KINDS.values()) + " (a new dataset takes its own default target and options)",
    )
    p.add_argument("--finding", help="the target label (default: the dataset's, as for train)")
    p.add_argument("--image-size", type=int, help="image side in pixels")
    from medtl.cli.runs import RUN_FLAGS, _option_flags, add_flags

    add_flags(p, {**_option_flags(), "skip_bad": RUN_FLAGS["skip_bad"]})  # the dataset kinds' own options
    p.add_argument("--epochs", type=int, help="training epochs of every run")
    p.add_argument("--backbone", help="comma-separated backbones")
    p.add_argument(
        "--strategy", help=f"comma-separated strategies ({reference().name} is always trained as the reference)"
    )
    p.add_argument("--cuts", help="blocks, layers, search or a comma-separated list of cut names")
    p.add_argument("--init", help="comma-separated: " + initialisations.allowed().replace("'", ""))
    p.add_argument("--train-size", help="comma-separated training sizes: 10%%, 0.1, 500 or all")
    p.add_argument("--seed", help="comma-separated seeds")
    from medtl.cli.runs import operating_point_arg
    from medtl.study.criteria import CRITERIA

    p.add_argument(
        "--criterion",
        help="how cuts are chosen, on validation: "
        + ", ".join(
            f"{k} ({c.words(c.example)}, with --operating-point {c.example})" if c.metric else k
            for k, c in CRITERIA.items()
        ).replace("%", "%%"),
    )
    operating_point_arg(p)
    p.add_argument(
        "--deployment-prevalence",
        type=float,
        metavar="P",
        help="run: the deployment prevalence the study's PR-side numbers (AP, PPV, NPV, flagged per 1,000, net "
        "benefit) are shown at, saved with it (0.05 = 5%%; default: the test set's own); show: at this one",
    )
    for action in p._actions:  # SynthCXR's --prevalence: on `study show` it is the deployment prevalence
        if "--prevalence" in action.option_strings:
            action.help += (
                "; on 'study show' the deployment prevalence of the PR-side numbers (as --deployment-prevalence)"
            )
    p.add_argument(
        "--advise",
        type=int,
        metavar="K",
        help="start the search's stage 1 from the cut advisor's top K block-level cuts (pretrained inits; "
        "random-init groups search every block); needs --cuts search",
    )
    p.add_argument("--dry-run", action="store_true", help="print the runs needed now and exit")
    p.add_argument("--json", action="store_true", help="show: machine-readable output")
    _runs_dir_arg(p)


def _split(v: str) -> list[str]:
    return [x.strip() for x in v.split(",") if x.strip()]


def study_from_args(a: argparse.Namespace, store):
    """The StudyConfig a ``study run`` command line asks for: a preset, a saved study (by name, or
    ``--name`` of one that exists) or the defaults, with the flags applied. A new ``--dataset`` takes
    that dataset's own default target and options (:meth:`DataConfig.with_dataset`) unless
    ``--finding`` says otherwise."""
    from medtl import study
    from medtl.cli.runs import RUN_FLAGS, _option_flags, refuse_foreign_options
    from medtl.config import DataConfig

    if a.preset:
        s = study.preset(a.preset)
    elif a.name or (a.new_name and a.new_name in study.saved(store)):
        s = study.load(store, a.name or a.new_name)
    elif a.new_name:
        s = study.StudyConfig(a.new_name)
    else:
        raise ValueError(
            f"study run needs --preset ({', '.join(study.PRESETS)}), the name of a saved study, or --name NAME "
            "for a new study from the defaults"
        )
    d = s.to_dict()
    if a.new_name:
        d["name"] = a.new_name
    data = DataConfig.from_dict(d["base"]["data"])
    if a.dataset is not None:
        data = data.with_dataset(a.dataset)
    options = {f: getattr(a, f) for f in (*_option_flags(), "skip_bad") if getattr(a, f, None) is not None}
    refuse_foreign_options(options, data.dataset)
    over = {"finding": a.finding, "image_size": a.image_size, **{RUN_FLAGS[f][1]: v for f, v in options.items()}}
    d["base"]["data"] = data.replace(**{k: v for k, v in over.items() if v is not None}).to_dict()
    if a.epochs is not None:
        d["base"]["train"]["epochs"] = a.epochs
    for flag, axis in STUDY_LISTS.items():
        v = getattr(a, flag)
        if v is None:
            continue
        values = _split(v)
        if not values:
            raise ValueError(f"--{flag.replace('_', '-')} needs at least one value. Got {v!r}")
        if flag == "seed":
            try:
                values = [int(x) for x in values]
            except ValueError:
                raise ValueError(f"--seed must be whole numbers separated by commas. Got {v!r}") from None
        d[axis] = values  # training sizes are parsed by StudyConfig (one form: 10% = 0.1, all = None)
    if a.cuts is not None:
        d["cuts"] = a.cuts if a.cuts in study.CUT_MODES else _split(a.cuts)
    if a.criterion is not None:
        d["criterion"] = a.criterion
    if a.operating_point is not None:
        d["operating_point"] = a.operating_point
    if a.deployment_prevalence is not None:
        d["prevalence"] = a.deployment_prevalence
    return study.StudyConfig.from_dict(d)


def study_run(a: argparse.Namespace) -> int:
    from medtl.runs import RunStore

    store = RunStore(a.runs_dir)
    if a.action == "run":
        return _run(a, store)
    from medtl import study

    if not a.name:
        raise ValueError(f"'study {a.action}' needs the study's name")
    s = study.load(store, a.name)
    if a.action == "plan":
        for i, c in enumerate(study.plan(s, store), 1):
            print(f"{i:3}  {c.name}")
        return 0
    at = a.deployment_prevalence if a.deployment_prevalence is not None else getattr(a, "prevalence", None)
    return _show(s, store, a.json, at)


def _run(a: argparse.Namespace, store) -> int:
    from medtl import study

    s = study_from_args(a, store)
    advice = None
    if a.advise is not None:
        s, advice = _advise(s, store, a.advise)
    from medtl.cli.runs import _print_preflight
    from medtl.study.preflight import check_data

    _print_preflight(s.base.data.dataset, check_data(s))  # refused (exit 2) before anything is recorded
    if a.dry_run:
        todo = study.plan(s, store)
        for i, c in enumerate(todo, 1):
            print(f"{i:3}  {c.name}")
        later = " (stage 2 of the search is added once stage 1 has finished)" if s.cuts == "search" else ""
        print(f"{len(todo)} run(s) to train now{later}")
        return 0
    from medtl.cli.runs import _train_one

    def on_run(k, n, cfg):
        print(f"[{k}/{n}] {cfg.name}", file=sys.stderr)

    study.save(s, store)
    if advice is not None:
        study.save_advice(s, store, advice)
    result = study.run_study(s, store, lambda cfg: _train_one(store, cfg)[1], on_run)
    print(
        f"study {s.name}: trained {result['trained']} run(s), {result['failed']} failed, {result['missing']} missing; "
        f"saved as {study.study_path(store, s.name)}"
    )
    _show(s, store, False, None)
    if result["errors"]:
        e = result["errors"][0]
        print(
            f"medtl study: {len(result['errors'])} run(s) did not finish; the first, {e['run']} ({e['name']}), "
            f"{e['state']}: {e['error']}",
            file=sys.stderr,
        )
    if result["elsewhere"]:
        print(
            f"medtl study: {result['elsewhere']} run(s) are being trained by another writer of {store.root}; "
            "run this again once they finish for the rest",
            file=sys.stderr,
        )
    # runs another writer trains are not this command's failure; runs it could not train are
    return 1 if result["failed"] or (result["missing"] and not result["elsewhere"]) else 0


def _advise(s, store, top: int):
    """``study run --advise K``: the advisor's picks put into ``start``, and its tables."""
    from medtl import study

    def progress(k, n, backbone, init):
        print(f"[advisor {k}/{n}] scoring the block-level cuts of {backbone} from {init}", file=sys.stderr)

    s, advice = study.advise_start(s, store, top, progress=progress)
    for b, result in advice["backbones"].items():
        ranked = ", ".join(f"{c['cut']} ({c['score']:.2f})" for c in result["cuts"])
        print(
            f"advisor, {b} from {result['init']} on {result['n']} training images ({result['n_pos']} positive), "
            f"{result['seconds']:.1f} s: {ranked}\n  stage 1 starts from {', '.join(s.start[b])} and the full network",
            file=sys.stderr,
        )
    return s, advice


def _show(s, store, as_json: bool, prevalence: float | None) -> int:
    from medtl.metrics import check_prevalence
    from medtl.study.conclusions import summarize
    from medtl.study.criteria import CRITERIA

    if prevalence is not None:
        check_prevalence(prevalence)
    out = summarize(s, store, prevalence=prevalence)
    if as_json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(f"study {s.name} (cuts chosen on {CRITERIA[s.criterion].words(s.operating_point)}):")
    at = "" if out["prevalence"] is None else f" at {out['prevalence']:.1%}"
    for g in out["groups"]:
        head = f"  {g['backbone']} {g['strategy']} · {g['init']} · {g['size']}:"
        if not g.get("vs_full"):
            b = g.get("blocked") or {}
            why = g.get("error") or (
                f"{len(b['failed'])} run(s) did not finish" if b.get("failed") else "not decided yet"
            )
            print(f"{head} {why}")
            continue
        t, f, v = g["selected_test"], g["full_test"], g["vs_full"]
        print(
            f"{head} selected {g['selected']}  AUROC {fmt_ci(t['auroc'])}  AUPRC{at} {fmt_ci(t['auprc'])}  |  "
            f"full AUROC {f['auroc']['value']:.3f} AUPRC {f['auprc']['value']:.3f}  |  "
            f"Δ AUROC {fmt_ci(v['delta_auroc'])} Δ AUPRC {fmt_ci(v['delta_auprc'])} p={v['delong_p']:.3g}"
        )
        op = g.get("operating") or {}
        if op.get("available"):
            m = op["metrics"]
            p_values = ", ".join(f"{x['p']:.3g}" for x in op["mcnemar"])
            print(
                f"    at {op['label']} (validation): sensitivity {m['op.sensitivity']['a']['value']:.3f} vs "
                f"{m['op.sensitivity']['b']['value']:.3f}, specificity {m['op.specificity']['a']['value']:.3f} vs "
                f"{m['op.specificity']['b']['value']:.3f}, PPV {m['op.ppv']['a']['value']:.3f} vs "
                f"{m['op.ppv']['b']['value']:.3f}, flagged {m['op.flagged_per_1000']['a']['value']:.0f} vs "
                f"{m['op.flagged_per_1000']['b']['value']:.0f} per 1,000 (prevalence {op['prevalence']:.1%}); "
                f"McNemar p {p_values}"
            )
        elif op:
            print(f"    {op['reason']}")
    if out["failed"]:
        print(f"\n{len(out['failed'])} run(s) the study needs did not finish (retry: python -m medtl runs resume ID):")
        for f in out["failed"]:
            print(
                f"  {f['run']}  {f['state']:11} {f['backbone']} {f['strategy']}@{f['cut']} · {f['init']} · "
                f"{f['size']} · seed {f['seed']}: {f['error']}"
            )
    print("\nConclusions:")
    for line in out["conclusions"]:
        print(f"- {line}" if not line.startswith("  ") else f"  {line.strip()}")
    return 0


def report_configure(p: argparse.ArgumentParser) -> None:
    from medtl.cli.runs import prevalence_arg

    p.add_argument("name", help="the study's name")
    p.add_argument("--out", required=True, help="the HTML file to write")
    prevalence_arg(p)
    _runs_dir_arg(p)


def report_run(a: argparse.Namespace) -> int:
    from medtl import study
    from medtl.runs import RunStore
    from medtl.study.report import write_report

    store = RunStore(a.runs_dir)
    path = write_report(study.load(store, a.name), store, a.out, prevalence=a.prevalence)
    print(f"wrote {path}")
    return 0
