"""``advise``: score every cut of a pretrained backbone for a dataset, before training."""

from __future__ import annotations

import argparse
import json

# the data flags of `train`, and what to build; their names, types and help come from runs.RUN_FLAGS
_SHARED = ("dataset", "finding", "train_size", "image_size", "n_images", "prevalence", "difficulty")
_MODEL = ("backbone", "init", "weights", "device", "threads", "seed")


def advise_configure(p: argparse.ArgumentParser) -> None:
    from medtl.cli.runs import RUN_FLAGS, _runs_dir_arg

    for flag in (*_SHARED, *_MODEL):
        _, _, typ, text = RUN_FLAGS[flag]
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, type=typ, default=None, help=text.replace("%", "%%"))
    p.add_argument("--n", type=int, default=512, help="training images to score on (default %(default)s)")
    p.add_argument(
        "--level", choices=("block", "layer"), default="block", help="block-level cuts or every layer (default block)"
    )
    p.add_argument("--folds", type=int, default=5, help="folds of the logistic-regression probe (default %(default)s)")
    p.add_argument("--json", action="store_true")
    _runs_dir_arg(p)


def advise_run(a: argparse.Namespace) -> int:
    from medtl.advise import advise
    from medtl.cli.runs import run_config_from_args
    from medtl.data.adapters import check_source
    from medtl.strategies import reference

    if a.init is None:
        raise ValueError("--init is required: imagenet, file:<state_dict.pt> or run:<id> (the pretrained source)")
    # the reference (the whole network) is built once, so the image must suit every cut
    cfg = run_config_from_args(a, {"strategy": reference().name})
    check_source(cfg.data)
    m, t = cfg.model, cfg.train
    r = advise(
        cfg.data, m.backbone, m.init, m.weights, a.n, a.level, a.folds, t.seed, t.device, 64, a.runs_dir, t.threads
    )
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    print(
        f"{r['backbone']} from {r['init']} on {cfg.data.label} at {r['image_size']} px: {r['n']} training images "
        f"({r['n_pos']} positive), {r['folds']}-fold probe, {r['seconds']:.1f} s "
        f"(forward {r['forward_seconds']:.1f} s)"
    )
    print(f"ranked by {r['score']}")
    print(f"{'rank':>4}  {'cut':34}{'level':>7}{'channels':>10}{'LogME':>10}{'AUROC':>8}{'AUPRC':>8}{'score':>7}")
    for c in r["cuts"]:
        print(
            f"{c['rank']:>4}  {c['cut']:34}{c['level']:>7}{c['channels']:>10}{c['logme']:>10.4f}"
            f"{c['probe_auroc']:>8.3f}{c['probe_auprc']:>8.3f}{c['score']:>7.2f}"
        )
    return 0
