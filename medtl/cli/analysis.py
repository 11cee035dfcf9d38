"""``similarity``: how much of a run's initial representation survives training, per cut."""

from __future__ import annotations

import argparse
import json
import math


def similarity_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id")
    p.add_argument("--n", type=int, default=256, help="test images to compare on (default %(default)s)")
    p.add_argument(
        "--features",
        choices=("flatten", "gap"),  # medtl.similarity.FEATURES (not imported: building the parser imports no torch)
        default="flatten",
        help="flatten each stage's activations (as Kornblith et al.) or average them per channel (default %(default)s)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--runs-dir", help="runs folder (default $MEDTL_RUNS or ./runs)")


def similarity_run(a: argparse.Namespace) -> int:
    from medtl.runs import RunStore
    from medtl.similarity import run_similarity

    r = run_similarity(RunStore(a.runs_dir), a.run_id, n=a.n, features=a.features)
    if a.json:
        # NaN (a constant representation) is not JSON: null
        clean = {
            k: [None if isinstance(v, float) and math.isnan(v) else v for v in x] if k.startswith("cka") else x
            for k, x in r.items()
        }
        print(json.dumps(clean, indent=2))
        return 0
    print(f"{a.run_id}: linear CKA (unbiased) on {r['n']} test images, {r['features']} features")
    print(f"{'stage':28}{'init (' + r['init'] + ')':>20}{'random':>10}")
    for s, c0, c1 in zip(r["stages"], r["cka_initial"], r["cka_random"], strict=True):
        print(f"{s:28}{c0:>20.3f}{c1:>10.3f}")
    print("high = the trained network still represents these images as its initialisation did (reuse)")
    return 0
