"""``toy``, ``models`` and ``data``: look at the example, the networks and the datasets."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys


def toy_configure(p: argparse.ArgumentParser) -> None:
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


def toy_run(a: argparse.Namespace) -> int:
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


def models_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("backbone", nargs="?", help="list this backbone's cut points (omit for the table of backbones)")
    p.add_argument("--image-size", type=int, default=224, help="input size for MACs (default %(default)s)")
    p.add_argument("--level", choices=("block", "all"), default="all", help="block-level cuts only, or all")
    p.add_argument(
        "--download", metavar="NAME", help="download NAME's ImageNet weights into the torch cache (needs internet)"
    )
    p.add_argument("--weights", default="IMAGENET1K_V1", help="weights version for --download (default %(default)s)")
    p.add_argument("--json", action="store_true")


def models_run(a: argparse.Namespace) -> int:
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
                    "family": spec.family.name,
                    "cuts": len(registry.cut_points(name)),
                    "min_size": registry.min_input_size(name),
                    "imagenet": "cached" if st["available"] else ("n/a" if st["file"] is None else "not downloaded"),
                    "description": spec.description,
                }
            )
        if a.json:
            print(json.dumps(rows, indent=2))
        else:
            print(f"{'backbone':16}{'family':13}{'cuts':>5}{'min px':>8}  {'ImageNet weights':18}description")
            for r in rows:
                print(
                    f"{r['backbone']:16}{r['family']:13}{r['cuts']:>5}{r['min_size']:>8}  {r['imagenet']:18}{r['description']}"
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


def data_configure(p: argparse.ArgumentParser) -> None:
    from medtl import datasets
    from medtl.cli.runs import RUN_FLAGS, add_flags
    from medtl.config import DataConfig

    p.add_argument("spec", nargs="?", default="synthetic", help=" | ".join(k.spec for k in datasets.KINDS.values()))
    add_flags(p, {k: v for k, v in RUN_FLAGS.items() if v[0] == "data" and k != "dataset"})
    defaults = {f.name: f.default for f in dataclasses.fields(DataConfig)}
    p.add_argument("--seed", type=int, help=f"seed of the data-poor subset (default {defaults['seed']})")
    p.add_argument(
        "--split-seed", type=int, help=f"seed of generated train/val/test splits (default {defaults['split_seed']})"
    )
    p.add_argument("--preview", metavar="OUT.png", help="write a contact sheet of test images")
    p.add_argument("--json", action="store_true")


def data_config_from_args(a: argparse.Namespace):
    """The DataConfig of the flags given; the others keep the defaults of the config and its dataset kind."""
    from medtl.cli.runs import RUN_FLAGS
    from medtl.config import DataConfig

    given = {field: getattr(a, flag, None) for flag, (part, field, _, _) in RUN_FLAGS.items() if part == "data"}
    given.update(dataset=a.spec, seed=a.seed, split_seed=a.split_seed)
    return DataConfig(**{k: v for k, v in given.items() if v is not None})


def data_run(a: argparse.Namespace) -> int:
    from medtl import data as D
    from medtl.data.preview import save_contact_sheet

    cfg = data_config_from_args(a)
    ds = D.load(cfg)
    counts = ds.counts()
    warnings = D.data_warnings(ds)
    for w in warnings:
        print(f"warning: {cfg.dataset}: {w}", file=sys.stderr)
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
            "target_note": ds.info.get("target_note", ""),
            "saturation": D.saturation(ds),
            "warnings": warnings,
        }
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{cfg.label} · {ds.image_size}px · {ds.channels} channel(s) · target {ds.target_name!r} · {ds.info.get('source', '')}"
    )
    if ds.info.get("target_note"):
        print(ds.info["target_note"])
    sat = D.saturation(ds)
    print(f"{'split':8}{'images':>9}{'positives':>11}{'prevalence':>12}{'at 0':>8}{'at 255':>8}")
    for name, c in counts.items():
        s = sat[name]
        print(f"{name:8}{c['n']:>9}{c['n_pos']:>11}{c['prevalence']:>12.3f}{s['at_0']:>8.1%}{s['at_255']:>8.1%}")
    if ds.info.get("skipped"):
        print(f"skipped {ds.info['skipped']} unreadable image(s), e.g. {ds.info['skipped_files'][0]}")
    if a.preview:
        print(f"contact sheet: {a.preview}")
    return 0
