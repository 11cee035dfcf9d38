"""How well the cut advisor's ranking predicts the trained ranking, and what it costs.

Run: ``python benchmarks/bench_advise.py [--quick] [--medmnist FILE.npz] [--finding NAME]``.

ImageNet weights are not available offline, so the "pretrained" source is a network trained
first on another SynthCXR finding (opacity, the whole ResNet, from random). For two target tasks

(a) SynthCXR nodule, and
(b) a MedMNIST-format ``.npz`` (written by this script from SynthCXR effusion images at 28 px,
    MedMNIST's size, or a real MedMNIST file given with ``--medmnist``),

the advisor scores every block-level cut from that source (``init file:<source model.pt>``), and
each of those cuts is trained briefly through the RunStore (strategy ``truncate``, the same
init). Reported: Spearman's rho over cuts between each advisor score (the ranking ``score``,
LogME, probe AUROC/AUPRC) and the trained runs' best validation AUPRC; and the advisor's cost
(model build + one forward pass + LogME + probes, data loading excluded as training pays it too)
relative to training all those cuts for one epoch (the training seconds of each run's first
epoch, validation excluded). Results: ``benchmarks/results/advise.{json,md}``.
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

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import HERE, markdown_table, train_done, write_result  # noqa: E402
from medtl.advise import advise  # noqa: E402
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from medtl.data import synth  # noqa: E402
from medtl.runs import RunStore  # noqa: E402

SCORES = ("score", "logme", "probe_auroc", "probe_auprc")


def write_medmnist(path: Path, n: int, finding: str = "effusion", seed: int = 1, difficulty: float = 0.3) -> Path:
    """A MedMNIST-format file (``{train,val,test}_{images,labels}``, 28 px, class ids) from SynthCXR."""
    prev = {f: (0.3 if f == finding else 0.15) for f in synth.FINDINGS}
    images, labels, _ = synth.generate(n, 28, seed=seed, prevalence=prev, difficulty=difficulty, progress=False)
    y = labels[:, synth.FINDINGS.index(finding)].astype(np.uint8)[:, None]
    cut = np.cumsum([int(0.7 * n), int(0.15 * n)])
    parts = np.split(np.arange(n), cut)
    arrays = {}
    for name, idx in zip(("train", "val", "test"), parts, strict=True):
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = np.asarray(images[idx, 0]), y[idx]
    np.savez_compressed(path, **arrays)
    return path


def train_run(store: RunStore, data: DataConfig, model: ModelConfig, tc: TrainConfig) -> dict:
    run_id = train_done(store, RunConfig(data, model, tc))
    hist = store.history(run_id)
    return {
        "id": run_id,
        "val_auprc": max(h["val_auprc"] for h in hist),
        "epoch1_seconds": hist[0]["seconds"],
        "test_auprc": store.metrics(run_id)["test"]["auprc"],
    }


def task(store, name, data, backbone, init, n, tc) -> dict:
    print(f"[{name}] advising", file=sys.stderr)
    adv = advise(data, backbone, init, n=n, level="block", device="cpu", runs_dir=store.root)
    trained = {}
    for c in adv["cuts"]:
        print(f"[{name}] training truncate@{c['cut']}", file=sys.stderr)
        trained[c["cut"]] = train_run(store, data, ModelConfig(backbone, "truncate", c["cut"], init), tc)
    from scipy.stats import spearmanr

    cuts = [c["cut"] for c in adv["cuts"]]
    target = [trained[c]["val_auprc"] for c in cuts]
    rho = {s: float(spearmanr([c[s] for c in adv["cuts"]], target).statistic) for s in SCORES}
    epoch = sum(t["epoch1_seconds"] for t in trained.values())
    return {
        "task": name,
        "dataset": data.dataset,
        "finding": data.finding,
        "advisor": adv,
        "trained": trained,
        "spearman": rho,
        "advisor_seconds": adv["seconds"],
        "one_epoch_all_cuts_seconds": epoch,
        "cost_ratio": adv["seconds"] / epoch,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small data, 48 px, short training (minutes on 2 cores)")
    ap.add_argument("--medmnist", help="a real MedMNIST .npz instead of the generated one")
    ap.add_argument("--finding", help="target of --medmnist (label name or index; default: the file's)")
    ap.add_argument(
        "--synth-finding", default="effusion", help="finding of the generated MedMNIST file (default %(default)s)"
    )
    ap.add_argument(
        "--synth-difficulty", type=float, default=0.3, help="SynthCXR difficulty of that file (default %(default)s)"
    )
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads for training and advisor alike (default %(default)s)"
    )
    ap.add_argument("--n-images", type=int, help="override: images per task")
    ap.add_argument("--image-size", type=int, help="override: image side")
    ap.add_argument("--source-epochs", type=int, help="override: epochs of the source network")
    ap.add_argument("--epochs", type=int, help="override: epochs per cut")
    ap.add_argument("--advisor-n", type=int, help="override: training images the advisor scores on")
    ap.add_argument("--only", choices=("synthetic", "medmnist"), help="one task only")
    ap.add_argument("--out", default="advise", help="results name: benchmarks/results/<out>.{json,md}")
    a = ap.parse_args()
    # one thread: on a busy shared CPU, two threads made a ResNet18 step 8x slower than one
    torch.set_num_threads(a.threads)
    n_images, size, src_epochs, epochs, n_adv = (800, 48, 4, 2, 256) if a.quick else (3000, 64, 5, 5, 512)
    n_images, size = a.n_images or n_images, a.image_size or size
    src_epochs, epochs, n_adv = a.source_epochs or src_epochs, a.epochs or epochs, a.advisor_n or n_adv
    tc = TrainConfig(epochs=epochs, patience=0, bootstrap=200, device="cpu", threads=a.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("MEDTL_CACHE", str(Path(tmp) / "cache"))
        store = RunStore(Path(tmp) / "runs")
        print("training the source network (SynthCXR opacity, whole network, from random)", file=sys.stderr)
        src_data = DataConfig(finding="opacity", n_images=n_images, image_size=size)
        src = train_run(
            store, src_data, ModelConfig(a.backbone, "finetune", "full", "random"), tc.replace(epochs=src_epochs)
        )
        init = f"file:{store.path(src['id']) / 'model.pt'}"
        npz = (
            Path(a.medmnist)
            if a.medmnist
            else write_medmnist(Path(tmp) / "synthmnist.npz", n_images, a.synth_finding, difficulty=a.synth_difficulty)
        )
        tasks = [
            ("SynthCXR nodule", DataConfig(finding="nodule", n_images=n_images, image_size=size)),
            (
                f"MedMNIST {'file ' + npz.name if a.medmnist else f'(SynthCXR {a.synth_finding}, 28 px'}"
                + ("" if a.medmnist or a.synth_difficulty == 0.3 else f", difficulty {a.synth_difficulty}")
                + ("" if a.medmnist else ")"),
                DataConfig(dataset=f"medmnist:{npz}", finding=a.finding, image_size=size),
            ),
        ]
        tasks = [t for t in tasks if a.only is None or t[1].kind == a.only]
        results = [task(store, name, data, a.backbone, init, n_adv, tc) for name, data in tasks]
    setup = {
        "backbone": a.backbone,
        "source": f"{a.backbone} trained {src_epochs} epochs on SynthCXR opacity (val AUPRC {src['val_auprc']:.3f})",
        "n_images": n_images,
        "image_size": size,
        "epochs_per_cut": epochs,
        "advisor_n": n_adv,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads",
        "quick": a.quick,
        "command": "python benchmarks/bench_advise.py " + " ".join(sys.argv[1:]),
        "total_seconds": time.perf_counter() - t0,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"{a.out}.json").write_text(json.dumps({"setup": setup, "tasks": results}, indent=1))
    write_result(a.out, report(setup, results))


def report(setup: dict, results: list[dict]) -> str:
    head = (
        f"Cut advisor vs trained ranking: {setup['backbone']}, block-level cuts, {setup['image_size']} px, "
        f"{setup['n_images']} images per task, truncate@cut trained {setup['epochs_per_cut']} epoch(s) from "
        f"{setup['source']}; advisor on {setup['advisor_n']} training images. {setup['machine']}"
        f". Command: `{setup['command']}`.\n\n"
    )
    summary = [
        [
            r["task"],
            *(f"{r['spearman'][s]:+.2f}" for s in SCORES),
            f"{r['advisor_seconds']:.1f} s",
            f"{r['one_epoch_all_cuts_seconds']:.1f} s",
            f"{r['cost_ratio']:.1%}",
        ]
        for r in results
    ]
    text = head + markdown_table(
        [
            "task",
            "rho(score)",
            "rho(LogME)",
            "rho(probe AUROC)",
            "rho(probe AUPRC)",
            "advisor",
            "1 epoch x cuts",
            "ratio",
        ],
        summary,
    )
    for r in results:
        rows = [
            [
                c["cut"],
                c["rank"],
                f"{c['score']:.2f}",
                f"{c['logme']:.4f}",
                f"{c['probe_auroc']:.3f}",
                f"{c['probe_auprc']:.3f}",
                f"{r['trained'][c['cut']]['val_auprc']:.3f}",
                f"{r['trained'][c['cut']]['epoch1_seconds']:.1f} s",
            ]
            for c in r["advisor"]["cuts"]
        ]
        text += f"\n\n{r['task']}:\n\n" + markdown_table(
            ["cut", "advisor rank", "score", "LogME", "probe AUROC", "probe AUPRC", "trained val AUPRC", "epoch 1"],
            rows,
        )
    return text


if __name__ == "__main__":
    main()
