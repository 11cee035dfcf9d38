"""``explain``: Grad-CAM maps of a recorded run and how well they point at the lesions."""

from __future__ import annotations

import argparse
import json

from medtl.cli.runs import _runs_dir_arg


def explain_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id")
    p.add_argument("--n", type=int, default=16, help="positive test images to explain (default %(default)s)")
    p.add_argument("--out", help="folder for overlay PNGs")
    p.add_argument("--no-sanity", action="store_true", help="skip the randomised-weights check")
    p.add_argument(
        "--layer", metavar="CUT", help="read the maps at this cut point (default: the run's cut, the map the head sees)"
    )
    # contrastive by default, as on the Explain page: with a GAP head plain maps carry an offset that is the
    # same for every image (on SynthCXR the zero-padded border), which puts deep cuts' maxima on the border
    kind = p.add_mutually_exclusive_group()
    kind.add_argument(
        "--contrast",
        dest="contrast",
        action="store_true",
        default=True,
        help="subtract the mean map of negative validation images (the evidence over a typical negative; the default)",
    )
    kind.add_argument("--plain", dest="contrast", action="store_false", help="plain Grad-CAM maps (no reference map)")
    p.add_argument("--json", action="store_true")
    _runs_dir_arg(p)


def explain_run(a: argparse.Namespace) -> int:
    from medtl import explain
    from medtl.runs import RunStore

    if a.n < 1:
        raise ValueError(f"--n must be at least 1. Got {a.n}")
    r = explain.explain_run(
        RunStore(a.runs_dir), a.run_id, a.n, a.out, sanity=not a.no_sanity, layer=a.layer, contrast=a.contrast
    )
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    h, w = r["map_size"]
    if not r.get("n"):
        print(
            f"{a.run_id}: no lesion masks for these images, so no pointing-game scores (maps written: {r.get('out', '-')})"
        )
        return 0
    kind = "contrastive Grad-CAM" if r["contrast"] else "Grad-CAM"
    print(f"{a.run_id}: {kind} at {r['layer']} ({h}x{w} map) on {r['n']} positive test images")
    print(f"  pointing game   {r['pointing_game']:.3f}   (chance: {r['pointing_game_chance']:.3f})")
    print(f"  energy in mask  {r['energy_in_mask']:.3f}   (chance: {r['energy_in_mask_chance']:.3f})")
    if r["pointing_game_ceiling"] < 1:
        print(
            f"  a {h}x{w} map can score at most {r['pointing_game_ceiling']:.3f}: for the other images no cell centre "
            "lies within the tolerance of the lesion (try an earlier --layer)"
        )
    if "randomized_weights_rank_corr" in r:
        print(
            f"  rank correlation with randomised weights: {r['randomized_weights_rank_corr']:.3f} (lower = the maps depend on the weights)"
        )
    if r.get("out"):
        print(f"  overlays: {r['out']}")
    return 0
