"""``train``, ``sweep``, ``runs`` and ``explain``: record runs in a runs folder and read them."""

from __future__ import annotations

import argparse
import json
import sys

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
    "compile": ("train", "compile", bool),
}
SWEEP_AXES = ("backbone", "strategy", "cut", "init", "train_size", "seed")


def _runs_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", help="runs folder (default $MEDTL_RUNS or ./runs)")


def _run_flags(p: argparse.ArgumentParser, lists: bool = False) -> None:
    p.add_argument("--config", help="start from this RunConfig JSON (e.g. runs/<id>/config.json); flags override it")
    for flag, (_, field, typ) in RUN_FLAGS.items():
        if typ is bool:  # a switch: present = True, absent = keep the config's value
            p.add_argument(
                "--" + flag.replace("_", "-"),
                dest=flag,
                action="store_const",
                const=True,
                default=None,
                help="torch.compile the training step: a one-off compile on the first batch, faster steps after",
            )
            continue
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


def train_configure(p: argparse.ArgumentParser) -> None:
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
    labels = t.get("labels")
    what = f"mean over {len(labels)} labels" if labels else f"{t['n_pos']} positive"
    return (
        f"test AUROC {t['auroc']:.3f} [{t['auroc_ci'][0]:.3f}, {t['auroc_ci'][1]:.3f}] · "
        f"AUPRC {t['auprc']:.3f} [{t['auprc_ci'][0]:.3f}, {t['auprc_ci'][1]:.3f}] · n={t['n']} ({what})"
    )


def _train_one(store, cfg, resume_id: str | None = None) -> tuple[str, dict]:
    from medtl import train

    run_id = resume_id or store.create(cfg, state="queued")
    print(f"run {run_id}: {cfg.name}\nfolder {store.path(run_id)}", file=sys.stderr)
    status = train.run(cfg, store, run_id, callback=_progress_printer(), resume=resume_id is not None)
    print(f"{run_id}  {_summary(store, run_id, status)}")
    return run_id, status


def train_run(a: argparse.Namespace) -> int:
    from medtl.runs import RunStore

    store = RunStore(a.runs_dir)
    cfg = run_config_from_args(a)
    _, status = _train_one(store, cfg)
    return 0 if status.get("state") == "done" else 1


def sweep_configure(p: argparse.ArgumentParser) -> None:
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


def sweep_run(a: argparse.Namespace) -> int:
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


def runs_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=("list", "show", "delete", "resume"), default="list")
    p.add_argument("run_id", nargs="?")
    p.add_argument("--json", action="store_true")
    _runs_dir_arg(p)


def runs_run(a: argparse.Namespace) -> int:
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


def explain_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id")
    p.add_argument("--n", type=int, default=16, help="positive test images to explain (default %(default)s)")
    p.add_argument("--out", help="folder for overlay PNGs")
    p.add_argument("--no-sanity", action="store_true", help="skip the randomised-weights check")
    p.add_argument("--json", action="store_true")
    _runs_dir_arg(p)


def explain_run(a: argparse.Namespace) -> int:
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
