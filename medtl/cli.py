"""Command line: ``python -m medtl {toy,...}`` (also installed as ``medtl``).

Each subcommand is a ``(configure, run)`` pair in ``COMMANDS``. User errors (bad values, missing
files) print one clear line on stderr and exit with status 2, never a traceback; set
``MEDTL_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from medtl import __version__

USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError, KeyError)


def _toy_configure(p: argparse.ArgumentParser) -> None:
    from medtl.toy import DEFAULTS

    p.add_argument("--n-pos", type=int, default=DEFAULTS["n_pos"], help="positives (default %(default)s)")
    p.add_argument("--n-neg", type=int, default=DEFAULTS["n_neg"], help="negatives (default %(default)s)")
    p.add_argument(
        "--k-a", type=int, default=DEFAULTS["k_a"], help="A ranks the positives within its top k (default %(default)s)"
    )
    p.add_argument(
        "--k-b", type=int, default=DEFAULTS["k_b"], help="B ranks the positives within its top k (default %(default)s)"
    )
    p.add_argument(
        "--draws", type=int, default=DEFAULTS["draws"], help="random classifiers per k (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--json", action="store_true", help="print the means as JSON")


def _toy_run(a: argparse.Namespace) -> int:
    from medtl.toy import METRICS, compare

    res = compare(a.n_pos, a.n_neg, a.k_a, a.k_b, a.draws, a.seed)
    if a.json:
        print(json.dumps({name: {m: float(r.metrics[m].mean()) for m in METRICS} for name, r in res.items()}, indent=2))
        return 0
    print(f"{a.n_pos} positives, {a.n_neg} negatives, {a.draws} draws, seed {a.seed}; mean ± std over draws")
    print(f"{'':14}{'AUROC':>18}{'AUPRC (AP)':>18}{'AUPRC (trapz)':>18}")
    for name, r in res.items():
        cells = "".join(f"{r.metrics[m].mean():>11.4f} ± {r.metrics[m].std():.3f}" for m in METRICS)
        print(f"{name + f' (k={r.k})':14}{cells}")
    return 0


def _models_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("backbone", nargs="?", help="list this backbone's cut points (omit for the table of backbones)")
    p.add_argument("--image-size", type=int, default=224, help="input size for MACs (default %(default)s)")
    p.add_argument("--level", choices=("block", "all"), default="all", help="block-level cuts only, or all")
    p.add_argument(
        "--download", metavar="NAME", help="download NAME's ImageNet weights into the torch cache (needs internet)"
    )
    p.add_argument("--weights", default="IMAGENET1K_V1", help="weights version for --download (default %(default)s)")
    p.add_argument("--json", action="store_true")


def _models_run(a: argparse.Namespace) -> int:
    from medtl.models import registry, weights
    from medtl.models.profile import cut_table

    if a.download:
        print(f"saved {weights.download_imagenet(a.download, a.weights)}")
        return 0
    if a.backbone is None:
        rows = []
        for name, spec in registry.BACKBONES.items():
            st = weights.weights_status(name)
            rows.append(
                {
                    "backbone": name,
                    "family": spec.family,
                    "cuts": len(registry.cut_points(name)),
                    "min_size": registry.min_input_size(name),
                    "imagenet": "cached" if st["available"] else ("n/a" if st["file"] is None else "not downloaded"),
                    "description": spec.description,
                }
            )
        if a.json:
            print(json.dumps(rows, indent=2))
        else:
            print(f"{'backbone':14}{'family':10}{'cuts':>5}{'min px':>8}  {'ImageNet weights':18}description")
            for r in rows:
                print(
                    f"{r['backbone']:14}{r['family']:10}{r['cuts']:>5}{r['min_size']:>8}  {r['imagenet']:18}{r['description']}"
                )
            print(f"\nImageNet weights are read from {weights.checkpoint_dir()}")
        return 0
    rows = cut_table(a.backbone, a.image_size)
    if a.level == "block":
        rows = [r for r in rows if r["level"] != "layer"]
    if a.json:
        print(json.dumps({"backbone": a.backbone, "image_size": a.image_size, "cuts": rows}, indent=2))
        return 0
    print(f"{a.backbone} at {a.image_size} px, truncated at each cut with a GAP + one-logit head")
    print(f"{'cut':38}{'level':>7}{'channels':>10}{'reduction':>11}{'params':>14}{'MACs':>16}")
    for r in rows:
        print(f"{r['name']:38}{r['level']:>7}{r['channels']:>10}{r['reduction']:>11}{r['params']:>14,}{r['macs']:>16,}")
    return 0


def _data_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "spec",
        nargs="?",
        default="synthetic",
        help="synthetic | medmnist:FILE | chexpert:ROOT | folder:ROOT | csv:FILE",
    )
    p.add_argument("--finding", help="target finding / positive class ('all' = multi-label where supported)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--train-size", help="fraction (0.05), percentage (5%%) or count (500) of the training split")
    p.add_argument("--seed", type=int, default=0, help="seed of the data-poor subset")
    p.add_argument("--split-seed", type=int, default=0, help="seed of generated train/val/test splits")
    p.add_argument("--n-images", type=int, default=3000, help="SynthCXR: number of images")
    p.add_argument("--prevalence", type=float, default=0.25, help="SynthCXR: prevalence of the target finding")
    p.add_argument(
        "--difficulty", type=float, default=0.3, help="SynthCXR: 0 = large, clear findings; 1 = small, faint"
    )
    p.add_argument("--uncertainty", default="ones", help="CheXpert: label -1 as ones | zeros | ignore")
    p.add_argument("--all-views", action="store_true", help="CheXpert: keep lateral views too")
    p.add_argument("--skip-bad", action="store_true", help="leave unreadable images out (counted) instead of failing")
    p.add_argument("--preview", metavar="OUT.png", help="write a contact sheet of test images")
    p.add_argument("--json", action="store_true")


def data_config_from_args(a: argparse.Namespace):
    from medtl.config import DataConfig

    finding = a.finding if a.finding is not None else ("nodule" if a.spec == "synthetic" else None)
    return DataConfig(
        dataset=a.spec,
        finding=finding,
        image_size=a.image_size,
        train_size=a.train_size,
        seed=a.seed,
        split_seed=a.split_seed,
        n_images=a.n_images,
        prevalence=a.prevalence,
        difficulty=a.difficulty,
        uncertainty=a.uncertainty,
        frontal_only=not a.all_views,
        skip_bad=a.skip_bad,
    )


def _data_run(a: argparse.Namespace) -> int:
    from medtl import data as D
    from medtl.data.preview import save_contact_sheet

    cfg = data_config_from_args(a)
    ds = D.load(cfg)
    counts = ds.counts()
    if a.preview:
        save_contact_sheet(ds, a.preview)
    if a.json:
        out = {
            "dataset": cfg.dataset,
            "target": ds.target_name,
            "labels": list(ds.label_names),
            "image_size": ds.image_size,
            "channels": ds.channels,
            "splits": counts,
            "skipped": ds.info.get("skipped", 0),
        }
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{cfg.label} · {ds.image_size}px · {ds.channels} channel(s) · target {ds.target_name!r} · {ds.info.get('source', '')}"
    )
    print(f"{'split':8}{'images':>9}{'positives':>11}{'prevalence':>12}")
    for name, c in counts.items():
        print(f"{name:8}{c['n']:>9}{c['n_pos']:>11}{c['prevalence']:>12.3f}")
    if ds.info.get("skipped"):
        print(f"skipped {ds.info['skipped']} unreadable image(s), e.g. {ds.info['skipped_files'][0]}")
    if a.preview:
        print(f"contact sheet: {a.preview}")
    return 0


# --- train / sweep / runs -----------------------------------------------------------------------

# flag -> (config part, field, type); every flag defaults to None = "keep the config's value"
RUN_FLAGS = {
    "dataset": ("data", "dataset", str),
    "finding": ("data", "finding", str),
    "train_size": ("data", "train_size", str),
    "image_size": ("data", "image_size", int),
    "n_images": ("data", "n_images", int),
    "prevalence": ("data", "prevalence", float),
    "difficulty": ("data", "difficulty", float),
    "backbone": ("model", "backbone", str),
    "strategy": ("model", "strategy", str),
    "cut": ("model", "cut", str),
    "init": ("model", "init", str),
    "weights": ("model", "weights", str),
    "head": ("model", "head", str),
    "epochs": ("train", "epochs", int),
    "batch_size": ("train", "batch_size", int),
    "lr": ("train", "lr", float),
    "optimizer": ("train", "optimizer", str),
    "schedule": ("train", "schedule", str),
    "patience": ("train", "patience", int),
    "seed": ("train", "seed", int),
    "device": ("train", "device", str),
}
SWEEP_AXES = ("backbone", "strategy", "cut", "init", "train_size", "seed")


def _runs_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", help="runs folder (default $MEDTL_RUNS or ./runs)")


def _run_flags(p: argparse.ArgumentParser, lists: bool = False) -> None:
    p.add_argument("--config", help="start from this RunConfig JSON (e.g. runs/<id>/config.json); flags override it")
    for flag, (_, field, typ) in RUN_FLAGS.items():
        many = lists and flag in SWEEP_AXES
        p.add_argument(
            "--" + flag.replace("_", "-"),
            dest=flag,
            type=str if many else typ,
            default=None,
            help=f"{'comma-separated ' if many else ''}{field}",
        )
    _runs_dir_arg(p)


def _coerce(value: str, typ: type):
    if typ is str and value.lower() == "none":
        return None
    return typ(value)


def run_config_from_args(a: argparse.Namespace, overrides: dict | None = None):
    from medtl.config import RunConfig, load_json

    d = load_json(a.config) if getattr(a, "config", None) else RunConfig().to_dict()
    d.setdefault("data", {}), d.setdefault("model", {}), d.setdefault("train", {})
    values = {k: getattr(a, k) for k in RUN_FLAGS if getattr(a, k, None) is not None}
    values.update(overrides or {})
    for flag, v in values.items():
        part, field, typ = RUN_FLAGS[flag]
        d[part][field] = _coerce(v, typ) if isinstance(v, str) else v
    if "seed" in values:  # one seed: training and the data-poor subset
        d["data"]["seed"] = d["train"]["seed"]
    if values.get("strategy") == "finetune" and "cut" not in values:
        d["model"]["cut"] = "full"
    if d["data"].get("train_size") is not None:
        from medtl.data.imageset import parse_train_size

        d["data"]["train_size"] = parse_train_size(d["data"]["train_size"])
    return RunConfig.from_dict(d)


def _train_configure(p: argparse.ArgumentParser) -> None:
    _run_flags(p)


def _progress_printer():
    from tqdm.auto import tqdm

    state = {"bar": None}

    def on_event(e: dict) -> None:
        bar = state["bar"]
        if e.get("type") == "batch":
            if bar is None or bar.desc != f"epoch {e['epoch']}/{e['epochs']}":
                if bar is not None:
                    bar.close()
                bar = state["bar"] = tqdm(
                    total=e["batches"], desc=f"epoch {e['epoch']}/{e['epochs']}", unit="batch", leave=True
                )
            bar.n = e["batch"]
            bar.set_postfix(loss=f"{e['loss']:.4f}", img_s=f"{e['images_per_s']:.0f}", refresh=False)
            bar.refresh()
        elif e.get("type") == "epoch" and bar is not None:
            bar.set_postfix(
                loss=f"{e['train_loss']:.4f}", val_auroc=f"{e['val_auroc']:.3f}", val_auprc=f"{e['val_auprc']:.3f}"
            )
            bar.close()
            state["bar"] = None
        elif e.get("type") == "status" and e.get("phase"):
            print(e["phase"], file=sys.stderr)

    return on_event


def _summary(store, run_id: str, status: dict) -> str:
    if status.get("state") != "done":
        return f"{status.get('state')}: {status.get('error')}"
    t = store.metrics(run_id)["test"]
    return (
        f"test AUROC {t['auroc']:.3f} [{t['auroc_ci'][0]:.3f}, {t['auroc_ci'][1]:.3f}] · "
        f"AUPRC {t['auprc']:.3f} [{t['auprc_ci'][0]:.3f}, {t['auprc_ci'][1]:.3f}] · n={t['n']} ({t['n_pos']} positive)"
    )


def _train_one(store, cfg, resume_id: str | None = None) -> tuple[str, dict]:
    from medtl import train

    run_id = resume_id or store.create(cfg, state="queued")
    print(f"run {run_id}: {cfg.name}\nfolder {store.path(run_id)}", file=sys.stderr)
    status = train.run(cfg, store, run_id, callback=_progress_printer(), resume=resume_id is not None)
    print(f"{run_id}  {_summary(store, run_id, status)}")
    return run_id, status


def _train_run(a: argparse.Namespace) -> int:
    from medtl.runs import RunStore

    store = RunStore(a.runs_dir)
    cfg = run_config_from_args(a)
    _, status = _train_one(store, cfg)
    return 0 if status.get("state") == "done" else 1


def _sweep_configure(p: argparse.ArgumentParser) -> None:
    _run_flags(p, lists=True)
    p.add_argument("--dry-run", action="store_true", help="print the expanded runs and exit")
    p.add_argument(
        "--emit", metavar="DIR", help="write one config JSON per run into DIR (for a cluster scheduler) and exit"
    )


def expand_sweep(a: argparse.Namespace) -> list:
    """The grid of RunConfigs: the product of the comma-separated axes, de-duplicated."""
    import itertools

    axes = {k: [v.strip() for v in getattr(a, k).split(",") if v.strip()] for k in SWEEP_AXES if getattr(a, k, None)}
    configs, errors, seen = [], [], set()
    for combo in itertools.product(*axes.values()) if axes else [()]:
        over = dict(zip(axes, combo, strict=True))
        if over.get("strategy") == "finetune":
            over["cut"] = "full"  # the whole network: the cut axis does not apply
        try:
            cfg = run_config_from_args(a, over)
        except ValueError as e:
            errors.append(f"{over}: {e}")
            continue
        if cfg.key() not in seen:
            seen.add(cfg.key())
            configs.append(cfg)
    if errors:
        raise ValueError(
            f"{len(errors)} combination(s) of the sweep are invalid, nothing was run:\n  " + "\n  ".join(errors)
        )
    return configs


def _sweep_run(a: argparse.Namespace) -> int:
    from pathlib import Path

    from medtl.runs import RunStore

    configs = expand_sweep(a)
    if a.dry_run:
        for i, c in enumerate(configs, 1):
            print(f"{i:3}  {c.name}")
        print(f"{len(configs)} run(s)")
        return 0
    if a.emit:
        out = Path(a.emit)
        out.mkdir(parents=True, exist_ok=True)
        for c in configs:
            (out / f"{c.key()}.json").write_text(c.to_json())
        print(f"wrote {len(configs)} config(s) to {out}; run each with: python -m medtl train --config FILE")
        return 0
    store = RunStore(a.runs_dir)
    failed = 0
    for i, c in enumerate(configs, 1):
        done = store.find(c)
        if done:
            print(f"[{i}/{len(configs)}] skip (done as {done}): {c.name}")
            continue
        print(f"[{i}/{len(configs)}] {c.name}", file=sys.stderr)
        _, status = _train_one(store, c)
        failed += status.get("state") != "done"
    print(f"sweep finished: {len(configs)} run(s), {failed} failed")
    return 1 if failed else 0


def _runs_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=("list", "show", "delete", "resume"), default="list")
    p.add_argument("run_id", nargs="?")
    p.add_argument("--json", action="store_true")
    _runs_dir_arg(p)


def _runs_run(a: argparse.Namespace) -> int:
    from medtl.runs import RunStore

    store = RunStore(a.runs_dir)
    if a.action != "list" and not a.run_id:
        raise ValueError(f"'runs {a.action}' needs a run id (see 'python -m medtl runs')")
    if a.action == "show":
        out = {
            "id": a.run_id,
            "config": store.config(a.run_id).to_dict(),
            "status": store.status(a.run_id),
            "metrics": store.metrics(a.run_id),
            "history": store.history(a.run_id),
        }
        print(json.dumps(out, indent=2, default=str))
        return 0
    if a.action == "delete":
        store.delete(a.run_id)
        print(f"deleted {a.run_id}")
        return 0
    if a.action == "resume":
        st = store.status(a.run_id)
        if st.get("state") in ("done", "running"):
            raise ValueError(f"Run {a.run_id} is {st.get('state')}; only interrupted, failed or cancelled runs resume")
        _, status = _train_one(store, store.config(a.run_id), resume_id=a.run_id)
        return 0 if status.get("state") == "done" else 1
    rows = []
    for run_id in store.ids():
        st, m = store.status(run_id), store.metrics(run_id) or {}
        t = m.get("test", {})
        rows.append(
            {
                "id": run_id,
                "name": st.get("name"),
                "state": st.get("state"),
                "auroc": t.get("auroc"),
                "auprc": t.get("auprc"),
                "error": st.get("error"),
            }
        )
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs in {store.root}")
        return 0
    print(f"{'id':24}{'state':12}{'AUROC':>7}{'AUPRC':>7}  name")
    fmt = lambda v: f"{v:>7.3f}" if isinstance(v, float) else f"{'-':>7}"  # noqa: E731
    for r in rows:
        print(f"{r['id']:24}{r['state']:12}{fmt(r['auroc'])}{fmt(r['auprc'])}  {r['name']}")
    return 0


def _explain_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id")
    p.add_argument("--n", type=int, default=16, help="positive test images to explain (default %(default)s)")
    p.add_argument("--out", help="folder for overlay PNGs")
    p.add_argument("--no-sanity", action="store_true", help="skip the randomised-weights check")
    p.add_argument("--json", action="store_true")
    _runs_dir_arg(p)


def _explain_run(a: argparse.Namespace) -> int:
    from medtl.explain import explain_run
    from medtl.runs import RunStore

    if a.n < 1:
        raise ValueError(f"--n must be at least 1. Got {a.n}")
    r = explain_run(RunStore(a.runs_dir), a.run_id, a.n, a.out, sanity=not a.no_sanity)
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    if not r.get("n"):
        print(
            f"{a.run_id}: no lesion masks for these images, so no pointing-game scores (maps written: {r.get('out', '-')})"
        )
        return 0
    print(f"{a.run_id}: Grad-CAM on {r['n']} positive test images")
    print(f"  pointing game   {r['pointing_game']:.3f}   (uniform random maps: {r['pointing_game_random']:.3f})")
    print(f"  energy in mask  {r['energy_in_mask']:.3f}   (uniform random maps: {r['energy_in_mask_random']:.3f})")
    if "randomized_weights_rank_corr" in r:
        print(
            f"  rank correlation with randomised weights: {r['randomized_weights_rank_corr']:.3f} (lower = the maps depend on the weights)"
        )
    if r.get("out"):
        print(f"  overlays: {r['out']}")
    return 0


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "toy": ("ROC vs PR on the ranked-classifier imbalance example", _toy_configure, _toy_run),
    "models": ("backbones, their cut points, parameters and MACs", _models_configure, _models_run),
    "data": ("dataset splits, counts and a preview contact sheet", _data_configure, _data_run),
    "train": ("train one run and record it in the runs folder", _train_configure, _train_run),
    "sweep": (
        "expand a grid of runs (comma-separated axes) and train them, skipping done ones",
        _sweep_configure,
        _sweep_run,
    ),
    "runs": ("list, show, delete or resume recorded runs", _runs_configure, _runs_run),
    "explain": ("Grad-CAM maps of a run and how well they point at the lesions", _explain_configure, _explain_run),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medtl", description="MedTL Studio: transfer learning for medical images.")
    parser.add_argument("--version", action="version", version=f"medtl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, configure, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        configure(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return args._run(args)
    except USER_ERRORS as e:
        if os.environ.get("MEDTL_DEBUG"):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"medtl {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (kept open until exit)
        return 0
    except KeyboardInterrupt:
        print(f"medtl {args.command}: interrupted", file=sys.stderr)
        return 130
