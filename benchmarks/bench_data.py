"""One training epoch's data path: MedTL's cache + batched augmentation vs a per-image PIL +
torchvision-transforms DataLoader, on the same JPEG files, in images/s, in one run.

Run: ``python benchmarks/bench_data.py [--n 2000] [--size 128]``. The JPEGs are SynthCXR images
at CheXpert-small size (320 x 390). MedTL's first epoch includes decoding into the cache (the
cost paid once); later epochs read the memory-mapped cache. The baseline decodes every image
every epoch, as a per-image ``Dataset`` does; it gets the better of 0 and 2 workers.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import HERE, export_synth_jpegs, markdown_table, write_result  # noqa: E402


class PILFolder(torch.utils.data.Dataset):
    """What a user would write: open each file with PIL and apply torchvision transforms."""

    def __init__(self, root: Path, size: int):
        from torchvision import transforms as T

        self.files = sorted(root.rglob("*.jpg"))
        self.labels = [float(f.parent.name == "pos") for f in self.files]
        self.tf = T.Compose(
            [
                T.Grayscale(),
                T.Resize(size),
                T.CenterCrop(size),
                T.RandomResizedCrop(size, scale=(0.85, 1.0), ratio=(0.9, 1.1)),
                T.RandomRotation(7),
                T.ToTensor(),
            ]
        )

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.files[i]) as im:
            return self.tf(im), self.labels[i]


def baseline_epoch(root: Path, size: int, batch: int, workers: int) -> float:
    loader = torch.utils.data.DataLoader(PILFolder(root, size), batch_size=batch, shuffle=True, num_workers=workers)
    t, n = time.perf_counter(), 0
    for x, _ in loader:
        n += x.shape[0]
    return n / (time.perf_counter() - t)


def medtl_epoch(cfg, batch: int, first: bool) -> float:
    from medtl import data as D
    from medtl.data.augment import AugmentConfig, batches

    t = time.perf_counter()
    ds = D.load(cfg)  # the first call decodes into the cache
    gen, n = torch.Generator().manual_seed(0), 0
    for x, _, _ in batches(ds, "train", batch, shuffle=True, gen=gen, aug=AugmentConfig()):
        n += x.shape[0]
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    work = HERE / "_work"
    os.environ["MEDTL_CACHE"] = str(work / f"cache-{time.time_ns()}")  # a cold cache for the first epoch
    root = export_synth_jpegs(work / f"jpeg{a.n}", a.n)

    from medtl.config import DataConfig

    # All images in the training split, so both sides read the same number of files.
    cfg = DataConfig(dataset=f"folder:{root}", finding="pos", image_size=a.size, val_fraction=0.01, test_fraction=0.01)
    first = medtl_epoch(cfg, a.batch, True)
    later = max(medtl_epoch(cfg, a.batch, False) for _ in range(3))
    base = {w: baseline_epoch(root, a.size, a.batch, w) for w in (0, 2)}
    best_w = max(base, key=base.get)
    rows = [
        ["PIL + torchvision transforms, DataLoader", f"{best_w} workers", f"{base[best_w]:,.0f}", "1.0x"],
        ["MedTL, first epoch (decode into cache)", "-", f"{first:,.0f}", f"{first / base[best_w]:.1f}x"],
        ["MedTL, later epochs (memory-mapped cache)", "-", f"{later:,.0f}", f"{later / base[best_w]:.1f}x"],
    ]
    text = (
        f"{a.n} JPEGs at 320x390 -> {a.size}px grayscale, batch {a.batch}, random resized crop + rotation; "
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}. Images/s over one epoch "
        f"(the baseline with {2 if best_w == 0 else 0} workers: {base[2 if best_w == 0 else 0]:,.0f} img/s).\n\n"
        + markdown_table(["data path", "workers", "images/s", "vs baseline"], rows)
    )
    write_result("data", text)


if __name__ == "__main__":
    main()
