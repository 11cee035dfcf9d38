"""``train``, ``sweep`` and ``runs``: record runs in a runs folder and read them."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING

from medtl import datasets, initialisations, strategies
from medtl.config import (
    DEVICES,
    HEADS,
    OPTIMIZERS,
    SCHEDULES,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    load_json,
)
from medtl.fields import flag_type
from medtl.states import STOPPED, State

if TYPE_CHECKING:
    from medtl.data import Preflight


def _option_flags() -> dict:
    """One flag per dataset-kind option, with its help from the kind's record."""
    out = {}
    for name, (_, option) in datasets.options().items():
        out[option.switch or name] = ("data", name, flag_type(DataConfig, name), option.help)
    return out


# flag -> (config part, field, type, help); every flag defaults to None = "keep the config's value"
RUN_FLAGS = {
    "dataset": ("data", "dataset", str, ", ".join(k.spec for k in datasets.KINDS.values())),
    "finding": (
        "data",
        "finding",
        str,
        "the target: a finding, class or label name, or 'all' (every label at once). Without it: "
        + "; ".join(f"{k.name}: {k.target_help}" for k in datasets.KINDS.values()),
    ),
    "train_size": (
        "data",
        "train_size",
        str,
        "training-set size: 5%, 0.05 or a count (stratified, nested; default: all)",
    ),
    "image_size": ("data", "image_size", int, "image side in pixels"),
    **_option_flags(),
    "skip_bad": ("data", "skip_bad", bool, "leave unreadable images out (counted) instead of failing"),
    "backbone": ("model", "backbone", str, "network (list: python -m medtl models)"),
    "strategy": ("model", "strategy", str, "one of " + ", ".join(strategies.STRATEGIES)),
    "cut": ("model", "cut", str, "where to cut: a layer or block name, or full (list: python -m medtl models NAME)"),
    "init": ("model", "init", str, initialisations.allowed().replace("'", "")),
    "weights": ("model", "weights", str, "torchvision weights name, for imagenet"),
    "head": ("model", "head", str, "one of " + ", ".join(HEADS)),
    "epochs": ("train", "epochs", int, "training epochs"),
    "batch_size": ("train", "batch_size", int, "images per step"),
    "lr": ("train", "lr", float, "learning rate"),
    "optimizer": ("train", "optimizer", str, "one of " + ", ".join(OPTIMIZERS)),
    "schedule": ("train", "schedule", str, "one of " + ", ".join(SCHEDULES)),
    "patience": ("train", "patience", int, "early stopping: epochs without improvement (0 = off)"),
    "seed": ("train", "seed", int, "seed of training and of the training-set subset"),
    "device": ("train", "device", str, "one of " + ", ".join(DEVICES)),
    "threads": ("train", "threads", int, "CPU threads for torch (default: torch's, the core count)"),
    "compile": ("train", "compile", bool, "torch.compile the training step: a one-off compile, faster steps after"),
    "operating_point": (
        "train",
        "operating_point",
        str,
        "how test.op's threshold is chosen on validation: sensitivity:S, specificity:S, youden or threshold:T",
    ),
}
SWEEP_AXES = ("backbone", "strategy", "cut", "init", "train_size", "seed")
# where a sweep's runs train: in this process, or through medtl.cluster.EXECUTORS — spelled out, as importing
# medtl.cluster loads submitit (0.3 s at every start of the command line); tests/test_cluster.py keeps them equal
EXECUTORS = ("inline", "local", "slurm")
# a switch sets this value (every other switch sets True): --all-views keeps lateral views
SWITCH_VALUES = {o.switch: not o.default for _, o in datasets.options().values() if o.switch}


def _runs_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", help="runs folder (default $MEDTL_RUNS or ./runs)")


def _field_defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def add_flags(p: argparse.ArgumentParser, flags: dict, lists: bool = False) -> None:
    """Flags from a table like ``RUN_FLAGS``; each defaults to None (= keep the config's value) and
    its help shows the config field's default."""
    defaults = {
        part: _field_defaults(cls)
        for part, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig))
    }
    for flag, (part, field, typ, text) in flags.items():
        name = "--" + flag.replace("_", "-")
        if typ is bool:  # a switch: present = its value, absent = keep the config's value
            const = SWITCH_VALUES.get(flag, True)
            p.add_argument(name, dest=flag, action="store_const", const=const, default=None, help=text)
            continue
        many = lists and flag in SWEEP_AXES
        default = defaults[part].get(field)
        text = f"{'comma-separated: ' if many else ''}{text}" + ("" if default is None else f" (default {default})")
        p.add_argument(name, dest=flag, type=str if many else typ, default=None, help=text.replace("%", "%%"))


def _run_flags(p: argparse.ArgumentParser, lists: bool = False) -> None:
    p.add_argument("--config", help="start from this RunConfig JSON (e.g. runs/<id>/config.json); flags override it")
    add_flags(p, RUN_FLAGS, lists)
    _runs_dir_arg(p)


def _coerce(value: str, typ: type):
    if typ is str and value.lower() == "none":
        return None
    return typ(value)


def refuse_foreign_options(values: dict, dataset: str) -> None:
    """An option flag of another kind of dataset would be dropped (DataConfig keeps other kinds' options at
    their defaults): refuse it, naming the flag, its kind and the dataset's."""
    kind = datasets.parse_spec(dataset)[0]
    for flag in values:
        owner = datasets.options().get(RUN_FLAGS[flag][1], (None,))[0]
        if owner is not None and owner is not kind:
            raise ValueError(
                f"--{flag.replace('_', '-')} is an option of {owner.title}, not of {kind.title} (the dataset is {dataset})"
            )


def run_config_from_args(a: argparse.Namespace, overrides: dict | None = None):
    """The RunConfig of ``--config`` (or the defaults) with the flags applied, checked against the
    model registry; every problem is one ValueError line."""
    d = load_json(a.config) if getattr(a, "config", None) else RunConfig().to_dict()
    if not isinstance(d, dict):
        raise ValueError(f"{a.config} must hold a JSON object with data, model and train. Got {type(d).__name__}")
    for part in ("data", "model", "train"):
        if not isinstance(d.setdefault(part, {}), dict):
            raise ValueError(f"{part} must be a JSON object of settings. Got {d[part]!r}")
    values = {k: getattr(a, k) for k in RUN_FLAGS if getattr(a, k, None) is not None}
    values.update(overrides or {})
    if "dataset" in values and values["dataset"] != d["data"].get("dataset", "synthetic"):
        d["data"]["finding"] = None  # another dataset: its own default target (DataConfig.with_dataset)
    refuse_foreign_options(values, values.get("dataset", d["data"].get("dataset", "synthetic")))
    for flag, v in values.items():
        part, field, typ, _ = RUN_FLAGS[flag]
        d[part][field] = _coerce(v, typ) if isinstance(v, str) else v
    if "seed" in values:  # one seed: training and the data-poor subset
        d["data"]["seed"] = d["train"]["seed"]
    # a cut the strategy ignores (finetune: the whole network) becomes full where nobody asked for it: the
    # default cut, or a sweep's cut axis (an override); a --cut given to train is the config's to refuse
    strategy = strategies.STRATEGIES.get(values.get("strategy"))  # unknown names: the config says so
    if strategy is not None and ("cut" not in values or "cut" in (overrides or {})):
        d["model"]["cut"] = strategy.effective_cut(d["model"].get("cut", ModelConfig.cut))
    from medtl.models.registry import check_run  # torch: only when a config is built, not for --help

    return check_run(RunConfig.from_dict(d))


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
        elif e.get("type") == "status" and e.get("phase") and e["phase"] != state.get("phase"):
            state["phase"] = e["phase"]  # once per phase (evaluation reports every batch)
            print(e["phase"], file=sys.stderr)

    return on_event


def _summary(store, run_id: str, status: dict) -> str:
    if status.get("state") != State.DONE:
        return f"{status.get('state')}: {status.get('error')}"
    t = store.metrics(run_id)["test"]
    labels = t.get("labels")
    what = f"mean over {len(labels)} labels" if labels else f"{t['n_pos']} positive"
    line = (
        f"test AUROC {t['auroc']:.3f} [{t['auroc_ci'][0]:.3f}, {t['auroc_ci'][1]:.3f}] · "
        f"AUPRC {t['auprc']:.3f} [{t['auprc_ci'][0]:.3f}, {t['auprc_ci'][1]:.3f}] · n={t['n']} ({what})"
    )
    op = t.get("op") or {}
    if op.get("available"):
        line += (
            f" · at {op['label']} (validation): sensitivity {op['sensitivity']:.3f}, specificity "
            f"{op['specificity']:.3f}, PPV {op['ppv']:.3f} · ECE {t['ece']:.3f}"
        )
    return f"{line} · warning: {status['warning']}" if status.get("warning") else line


def _train_one(store, cfg, resume_id: str | None = None) -> tuple[str | None, dict]:
    """Train (or resume) one run through its claim; under torchrun all processes train it and rank 0
    claims, records and prints. A run done already or trained by another live writer is skipped, said
    on stderr (status ``{"state": "done" | "busy", "skipped": True}``); a dead writer's run is resumed in its
    folder."""
    from medtl import distributed, train
    from medtl.runs import Start

    with distributed.session(cfg.train.device) as dist:
        start = None
        if dist.main:
            if resume_id:
                store.claim_for_resume(resume_id)
                start = Start(resume_id, "resume")
            else:
                start = store.start(cfg, state=State.QUEUED)
        run_id, action = dist.broadcast((start.run_id, start.action) if dist.main else None)
        dist.barrier()
        if action in ("done", "busy"):
            if dist.main:
                h = start.holder or {}
                why = "done" if action == "done" else f"being trained by {h.get('host', '?')}, pid {h.get('pid', '?')}"
                print(f"skip ({why} as {run_id}): {cfg.name}", file=sys.stderr)
            return run_id, {"state": action, "skipped": True}
        if dist.main:
            where = f" ({dist.world} processes, {cfg.train.batch_size // dist.world} images each a step)"
            again = " (resuming the folder a stopped writer left)" if action == "resume" and not resume_id else ""
            print(
                f"run {run_id}: {cfg.name}{again}\nfolder {store.path(run_id)}{where if dist.active else ''}",
                file=sys.stderr,
            )
        callback = _progress_printer() if dist.main else None
        status = train.run(cfg, store, run_id, callback=callback, resume=action == "resume", dist=dist)
        if dist.main:
            print(f"{run_id}  {_summary(store, run_id, status)}")
    return run_id, status


def _print_preflight(dataset: str, found: Preflight, said: set[str] | None = None) -> None:
    """The note on the chosen positive class and each data warning, on stderr; lines already in
    ``said`` (a sweep's other data-poor subsets of the same data) are not repeated."""
    lines = ([f"{dataset}: {found.note}"] if found.note else []) + [f"warning: {dataset}: {w}" for w in found.warnings]
    for line in lines:
        if said is None or line not in said:
            print(line, file=sys.stderr)
    if said is not None:
        said.update(lines)


def train_run(a: argparse.Namespace) -> int:
    from medtl.data import preflight
    from medtl.runs import RunStore

    store = RunStore(a.runs_dir)
    cfg = run_config_from_args(a)
    # a mistyped path, an ambiguous target or a split without positives is bad input (exit 2),
    # not a failed run left in the folder
    _print_preflight(cfg.data.dataset, preflight(cfg.data))
    # each run is trained once: the same config (seeds included) done or on its way elsewhere is not trained
    # again — a repeat is another --seed
    run_id, status = _train_one(store, cfg)
    if status.get("skipped"):
        print(f"note: run {run_id} has this exact config; for a repeat, give another --seed", file=sys.stderr)
        return 0
    return 0 if status.get("state") == State.DONE else 1


def sweep_configure(p: argparse.ArgumentParser) -> None:
    _run_flags(p, lists=True)
    p.add_argument("--dry-run", action="store_true", help="print the expanded runs and exit")
    p.add_argument(
        "--emit", metavar="DIR", help="write one config JSON per run into DIR (for a cluster scheduler) and exit"
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="inline",
        help="inline: one run after another in this process (default); slurm: one SLURM job array through "
        "submitit, one task per run; local: the same tasks as processes on this machine",
    )
    p.add_argument(
        "--slurm",
        metavar="K=V,...",
        help="submitit parameters, e.g. partition=gpu,gpus_per_node=1,timeout_min=120,array_parallelism=32",
    )


def expand_sweep(a: argparse.Namespace) -> list:
    """The grid of RunConfigs: the product of the comma-separated axes, de-duplicated."""
    import itertools

    axes = {k: [v.strip() for v in getattr(a, k).split(",") if v.strip()] for k in SWEEP_AXES if getattr(a, k, None)}
    configs, errors, seen = [], [], set()
    for combo in itertools.product(*axes.values()) if axes else [()]:
        over = dict(zip(axes, combo, strict=True))
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
        done_runs = RunStore(a.runs_dir).experiments()
        for i, c in enumerate(configs, 1):
            done = done_runs.get(c.key())
            print(f"{i:3}  {c.name}" + (f"  (done as {done})" if done else ""))
        n_done = sum(c.key() in done_runs for c in configs)
        print(f"{len(configs)} run(s), {len(configs) - n_done} to train ({n_done} done)")
        return 0
    if a.emit:
        out = Path(a.emit)
        out.mkdir(parents=True, exist_ok=True)
        for c in configs:
            (out / f"{c.key()}.json").write_text(c.to_json())
        print(f"wrote {len(configs)} config(s) to {out}; run each with: python -m medtl train --config FILE")
        return 0
    from medtl.data import preflight
    from medtl.data.adapters import check_source

    said: set[str] = set()
    for data in {c.data for c in configs}:  # before anything runs (emitted configs may run where paths differ)
        # inline, the data is loaded here before any run is recorded; on a cluster the tasks load it
        # (a login node need not read a whole dataset), so only the path and target are checked here
        if a.executor == "inline":
            _print_preflight(data.dataset, preflight(data), said)
        elif note := check_source(data):
            print(f"{data.dataset}: {note}", file=sys.stderr)
    if a.executor != "inline":
        return _sweep_submit(a, configs)
    store = RunStore(a.runs_dir)
    done_runs = store.experiments()
    failed = 0
    skipped = 0
    for i, c in enumerate(configs, 1):
        done = done_runs.get(c.key())
        if done:
            print(f"[{i}/{len(configs)}] skip (done as {done}): {c.name}")
            skipped += 1
            continue
        print(f"[{i}/{len(configs)}] {c.name}", file=sys.stderr)
        run_id, status = _train_one(store, c)  # claimed: another writer's run in progress is skipped
        if status.get("skipped"):
            print(
                f"[{i}/{len(configs)}] skip ({'done' if status['state'] == 'done' else 'in progress'} as {run_id}): {c.name}"
            )
            skipped += 1
            continue
        failed += status.get("state") != State.DONE
    print(f"sweep finished: {len(configs)} run(s), {skipped} skipped, {failed} failed")
    return 1 if failed else 0


def _sweep_submit(a: argparse.Namespace, configs: list) -> int:
    """The sweep as one submitit job array; ``local`` waits for its tasks, ``slurm`` returns at once."""
    from medtl import cluster
    from medtl.runs import RunStore

    if a.slurm and a.executor != "slurm":
        raise ValueError(f"--slurm applies to --executor slurm. Got --executor {a.executor}")
    params = cluster.parse_slurm(a.slurm)
    store = RunStore(a.runs_dir)
    print(f"runs folder {store.root}: it {cluster.SHARED_NOTE}")
    jobs, skipped = cluster.submit(configs, store.root, a.executor, params)
    for key, run_id in skipped.items():
        print(f"skip (done as {run_id}): {next(c.name for c in configs if c.key() == key)}")
    if not jobs:
        print(f"nothing to submit: all {len(configs)} run(s) are done")
        return 0
    if a.executor == "slurm":
        print(f"submitted {len(jobs)} task(s) as SLURM job array {jobs[0].job_id.split('_')[0]}")
    else:
        print(f"submitted {len(jobs)} task(s) as local processes; waiting for them")
    if a.executor == "slurm":
        print(f"follow them with: python -m medtl runs --runs-dir {store.root} (or the dashboard)")
        return 0
    failed = 0
    for job in jobs:
        try:
            r = job.result()
        except Exception as e:  # noqa: BLE001 - a task that crashed is reported, the others still count
            print(f"task {job.job_id} failed: {type(e).__name__}: {str(e).strip().splitlines()[-1:]}")
            failed += 1
            continue
        failed += r["state"] != State.DONE
        print(
            f"{r['run_id']}  {r['state']}{' (resumed)' if r['resumed'] else ''}  {store.status(r['run_id']).get('name')}"
        )
    print(f"sweep finished: {len(configs)} run(s), {len(skipped)} skipped as done, {failed} failed")
    return 1 if failed else 0


def fmt_ci(d: dict, fmt: str = ".3f") -> str:
    """``{"value": v, "ci": [lo, hi]}`` as ``v [lo, hi]`` (shared by compare and study show)."""
    return f"{d['value']:{fmt}} [{d['ci'][0]:{fmt}}, {d['ci'][1]:{fmt}}]"


def prevalence_arg(p: argparse.ArgumentParser) -> None:
    """``--prevalence P``: PR-side numbers at a deployment prevalence (shared by runs show, compare, study show, report)."""
    p.add_argument(
        "--prevalence",
        type=float,
        metavar="P",
        help="show AP, PPV, NPV, F1 and positives flagged per 1,000 at this deployment prevalence (0.05 = 5%%; "
        "the test negatives re-weighted; default: the test set's own)",
    )


def operating_point_arg(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument(
        "--operating-point",
        metavar="RULE",
        default=default,
        help="how each run's threshold is chosen on its validation split: sensitivity:S, specificity:S, youden or "
        "threshold:T" + (f" (default {default})" if default else " (default: the run's own, sensitivity:0.9)"),
    )


def runs_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        nargs="?",
        choices=("list", "show", "delete", "resume", "reevaluate", "dedupe"),
        default="list",
        help="list (default); show ID; delete ID; resume ID; reevaluate ID: predict the validation and test splits "
        "again with model.pt and recompute metrics.json's test section (runs recorded before validation "
        "predictions or a metric existed); dedupe: archive older copies of a run",
    )
    p.add_argument("run_id", nargs="?")
    p.add_argument("--json", action="store_true")
    prevalence_arg(p)
    operating_point_arg(p)
    p.add_argument(
        "--rekey",
        action="store_true",
        help="rewrite each run's key (and name) in status.json by the current definition of an experiment "
        "(keys are recomputed from config.json wherever runs are matched; this refreshes what status.json says)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="read every file of every run (history, predictions, checkpoints too) and list the damaged ones; "
        "exit 1 if there is any",
    )
    _runs_dir_arg(p)


def runs_run(a: argparse.Namespace) -> int:
    from medtl.runs import RunStore

    store = RunStore(a.runs_dir)
    if a.action not in ("list", "dedupe") and not a.run_id:
        raise ValueError(f"'runs {a.action}' needs a run id (see 'python -m medtl runs')")
    if a.rekey:
        changed = store.rekey()
        if a.json:
            print(json.dumps([{"id": r, "old_key": o, "key": n} for r, o, n in changed], indent=2))
            return 0
        for run_id, old, new in changed:
            print(f"{run_id}  {old} -> {new}")
        print(f"{len(changed)} of {len(store.ids())} run(s) rekeyed in {store.root}")
        return 0
    if a.check:
        return _check(store, a.json)
    if a.action == "dedupe":
        moved = store.dedupe()
        for run_id, keep in moved:
            print(f"{run_id}  archived to {store.root / '.archive' / run_id} (a copy of {keep})")
        print(f"{len(moved)} older copie(s) archived; nothing deleted")
        return 0
    if a.action == "show":
        return _show(store, a)
    if a.action == "reevaluate":
        from medtl.train import reevaluate

        print(f"{a.run_id}: predicting the validation and test splits again with model.pt", file=sys.stderr)
        reevaluate(store, a.run_id)
        print(f"{a.run_id}  {_summary(store, a.run_id, store.status(a.run_id))}")
        return 0
    if a.action == "delete":
        store.delete(a.run_id)
        print(f"deleted {a.run_id}")
        return 0
    if a.action == "resume":
        # "running" with its writer gone (killed; a torchrun group stopped) reads interrupted
        st = store.status(a.run_id)
        if st.get("state") not in STOPPED:
            raise ValueError(f"Run {a.run_id} is {st.get('state')}; only interrupted, failed or cancelled runs resume")
        _, status = _train_one(store, store.config(a.run_id), resume_id=a.run_id)
        return 0 if status.get("state") == State.DONE else 1
    return _list(store, a.json)


def _list(store, as_json: bool) -> int:
    """Every run, damaged ones included (state ``damaged``, the file and the reason as the error). The text
    listing extends names by whatever else tells the runs apart (image size, SynthCXR size, lr, ...); the
    JSON keeps each run's own name (a stable field for scripts)."""
    names = {}
    if not as_json:
        from medtl.compare import display_names

        table = store.table()
        names = dict(zip(table["id"], display_names(table), strict=True)) if not table.empty else {}
    dup = store.duplicates()
    copies = {old: keep for keep, olds in dup.items() for old in olds}
    rows = []
    for r in store.summaries():
        rows.append(
            {
                "id": r["id"],
                "name": names.get(r["id"], r.get("name")),
                "state": r["state"],
                "device": r.get("device"),
                "auroc": r.get("auroc"),
                "auprc": r.get("auprc"),
                "error": r.get("error"),
                "warning": r.get("warning"),
                "copy_of": copies.get(r["id"]),
            }
        )
    if as_json:  # one object per line of the list: quick to write for 10,000 runs, still readable
        print("[\n" + ",\n".join(json.dumps(r, default=str) for r in rows) + "\n]" if rows else "[]")
        return 0
    if not rows:
        print(f"no runs in {store.root}")
        return 0
    print(f"{'id':24}{'state':12}{'device':9}{'AUROC':>7}{'AUPRC':>7}  name")
    fmt = lambda v: f"{v:>7.3f}" if isinstance(v, float) else f"{'-':>7}"  # noqa: E731
    for r in rows:
        note = f"  [warning: {r['warning']}]" if r["warning"] else ""
        note += f"  [{r['error']}]" if r["state"] == State.DAMAGED else ""
        note += f"  [a copy of {r['copy_of']}: python -m medtl runs dedupe]" if r["copy_of"] else ""
        print(f"{r['id']:24}{r['state']:12}{r['device'] or '-':9}{fmt(r['auroc'])}{fmt(r['auprc'])}  {r['name']}{note}")
    if copies:
        print(f"{len(copies)} run(s) repeat a newer done run of the same config (listed once elsewhere)")
    return 0


def show_metrics(store, run_id: str, prevalence: float | None, rule: str | None) -> dict | None:
    """A run's ``metrics.json``, with the test section recomputed from its predictions at ``rule`` and with
    each prevalence-dependent metric at ``prevalence`` too (``auprc_at_prevalence``, ``op.ppv_at_prevalence``)."""
    from medtl.metrics import check_prevalence, evaluate
    from medtl.metrics.operating import parse_rule

    m = store.metrics(run_id)
    if prevalence is not None:
        check_prevalence(prevalence)
    if rule is not None:
        parse_rule(rule)
    if m is None or (prevalence is None and rule is None):
        return m
    p = store.predictions(run_id)
    if p is None:
        raise ValueError(f"Run {run_id} has no predictions.npz: --prevalence and --operating-point need them")
    cfg = store.config(run_id).train
    exclusive = (m.get("train") or {}).get("loss") == "cross_entropy"
    test = evaluate(p, rule or cfg.operating_point, prevalence, cfg.bootstrap, cfg.seed, exclusive, run_id)
    return {**m, "test": {**m.get("test", {}), **test}}


def _fmt_metric(record, test: dict, prevalence: float | None) -> str:
    part, _, leaf = record.key.rpartition(".")
    section = test.get(part, {}) if part else test

    def one(name: str) -> str:
        v, ci = section.get(name), section.get(f"{name}_ci")
        if v is None:
            return "—"
        return record.format(v) + (f" [{record.format(ci[0])}, {record.format(ci[1])}]" if ci else "")

    text = one(leaf)
    if prevalence is not None and record.prevalence and f"{leaf}_at_prevalence" in section:
        text += f"   at {prevalence:.1%}: {one(f'{leaf}_at_prevalence')}"
    return text


def _show(store, a: argparse.Namespace) -> int:
    """``runs show ID``: the run's metrics as the records name them (``--json``: config, status, metrics, history)."""
    from medtl.metrics import METRICS, NO_OPERATING_POINT

    m = show_metrics(store, a.run_id, a.prevalence, a.operating_point)
    status = store.status(a.run_id)
    if a.json:
        out = {
            "id": a.run_id,
            "config": store.config(a.run_id).to_dict(),
            "status": status,
            "metrics": m,
            "history": store.history(a.run_id),
        }
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(f"{a.run_id}: {status.get('name')} ({status.get('state')})")
    if not m:
        print(f"  no metrics.json{': ' + status['error'] if status.get('error') else ''}")
        return 0
    t = m.get("test", {})
    labels = t.get("labels")
    what = f"mean over {len(labels)} labels" if labels else f"{t.get('n_pos')} positive"
    print(f"  test: n={t.get('n')} ({what})")
    op = t.get("op") or {"available": False, "reason": NO_OPERATING_POINT.format(run=a.run_id)}
    width = max(len(r.label) for r in METRICS.values()) + 1  # one column of values, however long a label
    for record in METRICS.values():
        if record.needs == "threshold":
            continue
        print(f"  {record.label:{width + 2}} {_fmt_metric(record, t, a.prevalence)}")
    if op.get("available"):
        print(f"  operating point: {op['label']} chosen on validation, threshold {op['threshold']:.4g}")
        for record in METRICS.values():
            if record.needs == "threshold":
                print(f"    {record.label:{width}} {_fmt_metric(record, t, a.prevalence)}")
    else:
        print(f"  {op.get('reason')}")
    cal = t.get("calibration") or {}
    if cal.get("temperature") is not None and "ece_scaled" in cal:
        print(
            f"  temperature scaling on validation: T = {cal['temperature']:.3f}, validation log loss "
            f"{cal['val_nll']:.4f} -> {cal['val_nll_scaled']:.4f}; test ECE {t['ece']:.3f} -> {cal['ece_scaled']:.3f}, "
            f"Brier {t['brier']:.3f} -> {cal['brier_scaled']:.3f}, AUROC unchanged ({cal['auroc_scaled']:.3f})"
        )
    return 0


def _check(store, as_json: bool) -> int:
    """``runs --check``: every file of every run read; the damaged ones listed; exit 1 if any."""
    problems = store.check()
    if as_json:
        print(json.dumps([{"id": r, "problem": p} for r, p in problems], indent=2))
    else:
        for run_id, problem in problems:
            print(f"{run_id}  {problem}")
        n = len(store.ids())
        print(f"{len(problems)} damaged run(s) of {n} in {store.root}" if problems else f"all {n} run(s) readable")
    return 1 if problems else 0
