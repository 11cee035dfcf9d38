"""Seconds per epoch (training + validation): MedTL's trainer vs the loop a user would write.

Run: ``python benchmarks/bench_train.py [--n 600] [--quick]``. The reference is sun-umn/TTL's
style: a ``Dataset`` that decodes each image with PIL and applies torchvision transforms, in a
``DataLoader`` (best of 0 and 2 workers), the same model, optimiser, loss and batch size. Sources:

(a) a folder of JPEG files at CheXpert-small size (SynthCXR exported at 320 x 390);
(b) an in-memory MedMNIST-style uint8 array at 28 px (the reference wraps it in PIL per image,
    as MedMNIST's own ``Dataset`` does).

MedTL runs twice: eager (the default) and with ``compile=True`` (``torch.compile`` of the
training step; its one-off compilation lands in epoch 1, reported separately).

Also reported: the data path's share of a MedTL training step (data-only epoch time / epoch
time) and the achieved fraction of the machine's fp32 matmul throughput (FLOPs of one training
step counted by ``FlopCounterMode``, times steps per second, over a measured 2048^3 matmul rate).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import HERE, export_synth_jpegs, markdown_table, write_result  # noqa: E402
from medtl import train  # noqa: E402
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from medtl.data import load  # noqa: E402
from medtl.data.augment import AugmentConfig, batches  # noqa: E402
from medtl.models import build  # noqa: E402
from medtl.runs import RunStore  # noqa: E402

BATCH = 32


def matmul_gflops() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(5))
    return 2 * 2048**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def step_flops(model: nn.Module, size: int, channels: int) -> float:
    """FLOPs of one training step (forward + backward) on one batch."""
    x = torch.rand(BATCH, channels, size, size)
    model.train()
    with FlopCounterMode(display=False) as c:
        model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return float(c.get_total_flops())


# --- the reference loop ------------------------------------------------------------------------------


class JPEGDataset(torch.utils.data.Dataset):
    def __init__(self, files, labels, size, training):
        from torchvision import transforms as T

        self.files, self.labels = files, labels
        aug = [T.RandomResizedCrop(size, scale=(0.85, 1.0), ratio=(0.9, 1.1)), T.RandomRotation(7)] if training else []
        self.tf = T.Compose([T.Grayscale(), T.Resize(size), T.CenterCrop(size), *aug, T.ToTensor()])

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.files[i]) as im:
            return self.tf(im), torch.tensor([self.labels[i]], dtype=torch.float32)


class ArrayDataset(torch.utils.data.Dataset):
    """MedMNIST's own Dataset style: a PIL image per item, then transforms."""

    def __init__(self, images, labels, training):
        from torchvision import transforms as T

        self.images, self.labels = images, labels
        aug = [T.RandomResizedCrop(28, scale=(0.85, 1.0), ratio=(0.9, 1.1)), T.RandomRotation(7)] if training else []
        self.tf = T.Compose([*aug, T.ToTensor()])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image

        return self.tf(Image.fromarray(self.images[i, 0])), torch.tensor([self.labels[i]], dtype=torch.float32)


def reference_epochs(model_cfg, size, train_ds, val_ds, pos_weight, workers, epochs=2) -> list[float]:
    torch.manual_seed(0)
    model = build(model_cfg, size, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([pos_weight]))
    tl = torch.utils.data.DataLoader(
        train_ds, BATCH, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=workers > 0
    )
    vl = torch.utils.data.DataLoader(val_ds, BATCH * 2, num_workers=workers, persistent_workers=workers > 0)
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        model.train()
        for x, y in tl:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for x, _ in vl:
                torch.sigmoid(model(x))
        times.append(time.perf_counter() - t)
    return times


# --- MedTL ---------------------------------------------------------------------------------------


def medtl_epochs(data_cfg, model_cfg, epochs=3, compile=False) -> tuple[list[float], str]:
    store = RunStore(tempfile.mkdtemp(prefix="bench-runs-"))
    tc = TrainConfig(epochs=epochs, batch_size=BATCH, patience=0, bootstrap=10, compile=compile)
    cfg = RunConfig(data_cfg, model_cfg, tc)
    t0 = time.perf_counter()
    load(data_cfg)  # a cold cache: the first epoch pays for decoding once
    decode = time.perf_counter() - t0
    rid = store.create(cfg)
    status = train.run(cfg, store, rid)
    if status["state"] != "done":
        raise RuntimeError(status.get("error"))
    times = [h["seconds"] + h["val_seconds"] for h in store.history(rid)]
    times[0] += decode
    return times, rid


def data_share(data_cfg, epoch_seconds: float) -> float:
    """Seconds of one epoch's data path alone (batches + augmentation) over the epoch's seconds."""
    ds = load(data_cfg)
    gen = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    for _ in batches(ds, "train", BATCH, "cpu", shuffle=True, gen=gen, aug=AugmentConfig(), drop_last=True):
        pass
    for _ in batches(ds, "val", BATCH * 2, "cpu"):
        pass
    return (time.perf_counter() - t) / epoch_seconds


def compare_row(
    source: str, mcfg, dcfg, size: int, train_ds, val_ds, pos_weight: float, n_train: int, peak: float
) -> list:
    """Train with MedTL (eager and compiled) and with the reference loop (0 and 2 workers); one table row."""
    ours, _ = medtl_epochs(dcfg, mcfg)
    ref = {w: reference_epochs(mcfg, size, train_ds, val_ds, pos_weight, w) for w in (0, 2)}
    torch._dynamo.reset()
    comp, _ = medtl_epochs(dcfg, mcfg, compile=True)
    best_w = min(ref, key=lambda w: ref[w][-1])
    later, later_c = float(np.mean(ours[1:])), float(np.mean(comp[1:]))
    fastest = min(later, later_c)
    flops = step_flops(build(mcfg, size, 1), size, 1) * (n_train // BATCH) / fastest
    row = [
        source,
        f"{mcfg.backbone}@{mcfg.cut}",
        size,
        f"{ref[best_w][-1]:.1f} ({best_w}w)",
        f"{ours[0]:.1f}",
        f"{later:.1f}",
        f"{ref[best_w][-1] / later:.1f}x",
        f"{later_c:.1f} (+{max(comp[0] - ours[0], 0):.0f} s once)",
        f"{ref[best_w][-1] / later_c:.1f}x",
        f"{data_share(dcfg, fastest):.0%}",
        f"{flops / 1e9 / peak:.0%}",
    ]
    print(row, file=sys.stderr)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600, help="JPEG images for source (a)")
    ap.add_argument("--quick", action="store_true", help="ResNet18 at 64 px only")
    a = ap.parse_args()
    work = HERE / "_work"
    os.environ["MEDTL_CACHE"] = str(work / f"cache-{time.time_ns()}")
    peak = matmul_gflops()
    models = [("resnet18", "layer2"), ("resnet50", "layer3")]
    sizes = [64] if a.quick else [64, 128]
    rows = []

    # (a) JPEG folder at CheXpert-small size
    root = export_synth_jpegs(work / f"jpeg{a.n}", a.n)
    files = sorted(root.rglob("*.jpg"))
    labels = [float(f.parent.name == "pos") for f in files]
    order = np.random.default_rng(0).permutation(len(files))
    pw = (1 - np.mean(labels)) / np.mean(labels)

    def pick(idx):
        return [files[i] for i in idx], [labels[i] for i in idx]

    for backbone, cut in models[:1] if a.quick else models:
        for size in sizes:
            mcfg = ModelConfig(backbone, "truncate", cut, "random")
            dcfg = DataConfig(dataset=f"folder:{root}", finding="pos", image_size=size)
            ds = load(dcfg)  # the same numbers of training and validation images for the reference
            ntr, nva = ds.splits["train"].size, ds.splits["val"].size
            tr = JPEGDataset(*pick(order[:ntr]), size, True)
            va = JPEGDataset(*pick(order[ntr : ntr + nva]), size, False)
            rows.append(compare_row("(a) JPEG 320x390", mcfg, dcfg, size, tr, va, pw, ntr, peak))

    # (b) in-memory MedMNIST-style array at 28 px
    from medtl.data import synth

    images, lab, _m = synth.generate(a.n * 3, 28, seed=0)
    y = lab[:, 0]
    npz = work / "medmnist_like.npz"
    n = len(y)
    cut1, cut2 = int(n * 0.7), int(n * 0.85)
    np.savez(
        npz,
        train_images=images[:cut1, 0],
        train_labels=y[:cut1, None].astype(int),
        val_images=images[cut1:cut2, 0],
        val_labels=y[cut1:cut2, None].astype(int),
        test_images=images[cut2:, 0],
        test_labels=y[cut2:, None].astype(int),
    )
    for backbone, cut in models[:1] if a.quick else models:
        mcfg = ModelConfig(backbone, "truncate", cut, "random")
        dcfg = DataConfig(dataset=f"medmnist:{npz}", finding=None, image_size=28)
        tr = ArrayDataset(images[:cut1], y[:cut1], True)
        va = ArrayDataset(images[cut1:cut2], y[cut1:cut2], False)
        rows.append(compare_row("(b) array 28px", mcfg, dcfg, 28, tr, va, float((1 - y.mean()) / y.mean()), cut1, peak))

    header = [
        "source",
        "model",
        "px",
        "reference s/epoch (workers)",
        "MedTL epoch 1",
        "MedTL epochs 2+",
        "speed-up",
        "MedTL --compile epochs 2+ (compile)",
        "speed-up --compile",
        "data share",
        "of fp32 matmul peak",
    ]
    text = (
        f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
        f"measured fp32 matmul: {peak:.0f} GFLOP/s. {a.n} JPEGs for (a), {a.n * 3} arrays for (b); batch {BATCH}; "
        "seconds per epoch = training + validation; reference = its second epoch, best of 0 and 2 workers; "
        "data share and matmul fraction are of the faster MedTL variant.\n\n" + markdown_table(header, rows)
    )
    write_result("train", text)


if __name__ == "__main__":
    main()
