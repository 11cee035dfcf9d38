"""Does Grad-CAM point at the lesion at every cut? The pointing game against its exact chance level.

Run: ``python benchmarks/bench_pointing.py [--quick] [--image-size 128] [--n-images 3000]``.

ImageNet weights are not available offline, so the pretrained source is a ResNet18 trained first on
all SynthCXR findings (whole network, from random; a multi-label model). From it, ResNet18 is
truncated at every block-level cut (``stem``, ``layer1`` .. ``layer4``), fine-tuned on SynthCXR
nodule (``init run:<source>``), and explained exactly as ``python -m medtl explain RUN --json`` does
(``--plain`` for the plain maps): Grad-CAM at the cut on positive test images, pointing game with
TorchRay's Euclidean tolerance on the native map, its exact chance level and the best score a map of
that resolution allows, energy-in-mask and its chance level. Results: ``benchmarks/results/<out>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import HERE, markdown_table, train_done, write_result  # noqa: E402
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from medtl.explain import explain_run  # noqa: E402
from medtl.runs import RunStore  # noqa: E402

CUTS = ("stem", "layer1", "layer2", "layer3", "layer4")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="48 px, 600 images, 2 epochs (a minute or two)")
    ap.add_argument("--image-size", type=int, help="image side (default 128)")
    ap.add_argument("--n-images", type=int, help="SynthCXR images (default 3000)")
    ap.add_argument("--source-epochs", type=int, help="epochs of the source network (default 6)")
    ap.add_argument("--epochs", type=int, help="epochs per cut (default 8)")
    ap.add_argument("--n", type=int, default=32, help="positive test images explained (default %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    ap.add_argument("--cuts", nargs="+", default=list(CUTS), help="cuts to train and explain")
    ap.add_argument("--out", help="results name (default pointing, or pointing_quick with --quick)")
    ap.add_argument("--report-only", action="store_true", help="rewrite the .md from the saved .json (no training)")
    a = ap.parse_args()
    if a.report_only:
        saved = json.loads((HERE / "results" / f"{a.out or 'pointing'}.json").read_text())
        write_result(a.out or "pointing", report(saved["setup"], saved["cuts"]))
        return
    torch.set_num_threads(a.threads)
    size, n_images, src_epochs, epochs = (48, 600, 2, 2) if a.quick else (128, 3000, 6, 8)
    size, n_images = a.image_size or size, a.n_images or n_images
    src_epochs, epochs = a.source_epochs or src_epochs, a.epochs or epochs
    out = a.out or ("pointing_quick" if a.quick else "pointing")
    tc = TrainConfig(epochs=epochs, patience=0, bootstrap=200, device="cpu", threads=a.threads)
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("MEDTL_CACHE", str(Path(tmp) / "cache"))
        store = RunStore(Path(tmp) / "runs")
        print(f"[source] resnet18 on all SynthCXR findings, {size} px, {src_epochs} epochs", file=sys.stderr)
        src_data = DataConfig(finding="all", n_images=n_images, image_size=size)
        src = train_done(
            store,
            RunConfig(src_data, ModelConfig("resnet18", "finetune", "full", "random"), tc.replace(epochs=src_epochs)),
        )
        data = DataConfig(finding="nodule", n_images=n_images, image_size=size)
        for cut in a.cuts:
            print(f"[{cut}] training truncate@{cut}", file=sys.stderr)
            run_id = train_done(store, RunConfig(data, ModelConfig("resnet18", "truncate", cut, f"run:{src}"), tc))
            test = store.metrics(run_id)["test"]
            plain = explain_run(store, run_id, n=a.n, sanity=False, contrast=False)
            contrastive = explain_run(store, run_id, n=a.n, sanity=False, contrast=True)
            rows.append(
                {
                    "cut": cut,
                    "test_auroc": test["auroc"],
                    "test_auprc": test["auprc"],
                    "plain": plain,
                    "contrastive": contrastive,
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    setup = {
        "image_size": size,
        "n_images": n_images,
        "source_epochs": src_epochs,
        "epochs": epochs,
        "n_explained": a.n,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads",
        "command": "python benchmarks/bench_pointing.py " + " ".join(sys.argv[1:]),
        "total_seconds": time.perf_counter() - t0,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"{out}.json").write_text(json.dumps({"setup": setup, "cuts": rows}, indent=1))
    write_result(out, report(setup, rows))


def p_above_chance(result: dict) -> float:
    """One-sided binomial p of at least this many hits if each image were hit with the mean exact chance."""
    from scipy.stats import binomtest

    hits = round(result["pointing_game"] * result["n"])
    return float(binomtest(hits, result["n"], result["pointing_game_chance"], alternative="greater").pvalue)


def report(setup: dict, rows: list[dict]) -> str:
    head = (
        f"Pointing game per cut: ResNet18 truncated at each block-level cut, SynthCXR nodule, {setup['image_size']} px, "
        f"{setup['n_images']} images, {setup['epochs']} epochs from a ResNet18 trained {setup['source_epochs']} epochs "
        f"on all SynthCXR findings; Grad-CAM at the cut on {setup['n_explained']} positive test images. "
        f"{setup['machine']}, {setup['total_seconds'] / 60:.0f} min. Command: `{setup['command']}`. "
        "p: one-sided binomial test of the contrastive hits against the mean exact chance level.\n\n"
    )
    table = [
        [
            r["cut"],
            "×".join(map(str, r["contrastive"]["map_size"])),
            f"{r['test_auroc']:.3f}",
            f"{r['plain']['pointing_game']:.2f}",
            f"{r['contrastive']['pointing_game']:.2f}",
            f"{r['contrastive']['pointing_game_chance']:.3f}",
            f"{p_above_chance(r['contrastive']):.1e}",
            f"{r['contrastive']['pointing_game_ceiling']:.2f}",
            f"{r['contrastive']['energy_in_mask']:.3f}",
            f"{r['contrastive']['energy_in_mask_chance']:.3f}",
            r["contrastive"]["n"],
        ]
        for r in rows
    ]
    return head + markdown_table(
        [
            "cut",
            "map",
            "test AUROC",
            "pointing, plain",
            "pointing, contrastive",
            "exact chance",
            "p (vs chance)",
            "best possible",
            "energy in mask",
            "energy chance",
            "images",
        ],
        table,
    )


if __name__ == "__main__":
    main()
