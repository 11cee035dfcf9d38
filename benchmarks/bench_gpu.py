"""Training throughput on a GPU: MedTL's trainer vs the loop a user would write vs a tuned ceiling.

Run: ``PYTHONPATH=. python3 benchmarks/bench_gpu.py`` (about 8 minutes on one H100/H200) or
``--device cpu --quick`` (a smoke test of every path, about 2 minutes on a small CPU). Imports only
the training path (torch, torchvision, numpy, pillow, scikit-learn): no streamlit, plotly, captum
or pydicom. Prints a Markdown table and writes it as JSON (``--out``).

For ResNet50 ``full`` at 224 px and ResNet18 cut at ``layer2`` at 64 px, on JPEGs at CheXpert-small
size (SynthCXR written at 320 x 390), images/s and seconds per training epoch from epoch 2 on:

(a) MedTL: ``train.run`` as the dashboard and the CLI call it (bf16 autocast and channels_last on CUDA);
(b) TTL-style: a ``Dataset`` that decodes each JPEG with PIL and applies torchvision transforms, in a
    ``DataLoader`` with ``num_workers`` = cores and ``pin_memory=True``, fp32 (as sun-umn/TTL trains);
(c) the ceiling: a plain-PyTorch loop over uint8 tensors already on the device (gather, scale and
    flip on the device, bf16 autocast on CUDA, fused AdamW, no per-step host synchronisation).

Also: MedTL's data-wait share (``data_wait_s`` of ``history.jsonl`` where the trainer records it,
else the synchronous data path timed alone over the epoch) and the GPU's mean utilisation while
each loop trains (``torch.cuda.utilization``, else ``nvidia-smi``). Targets (issue 14): (a) >= 3x (b),
(a) >= 0.9x (c), ResNet50 at 224 px >= 3,000 training images/s on an H100, data wait < 5%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_train import JPEGDataset  # noqa: E402
from benchmarks.common import HERE, export_synth_jpegs, markdown_table  # noqa: E402
from medtl import train  # noqa: E402
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from medtl.data import load  # noqa: E402
from medtl.data.augment import AugmentConfig, batches  # noqa: E402
from medtl.models import build  # noqa: E402
from medtl.runs import RunStore  # noqa: E402

# (label, model config, image size); --quick trains the same networks on smaller images
CASES = [
    ("ResNet50 full", ModelConfig("resnet50", "finetune", "full", "random"), 224),
    ("ResNet18 @layer2", ModelConfig("resnet18", "truncate", "layer2", "random"), 64),
]
QUICK_SIZES = {"ResNet50 full": 32, "ResNet18 @layer2": 32}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Utilisation:
    """Mean GPU utilisation (%) sampled every 0.2 s in a thread while the block runs; None on a CPU."""

    def __init__(self, device: torch.device):
        self.device, self.samples, self._stop = device, [], threading.Event()

    def _read(self) -> float | None:
        try:
            return float(torch.cuda.utilization(self.device))  # needs pynvml / nvidia-ml-py
        except Exception:  # noqa: BLE001 - no NVML bindings: ask the driver's tool instead
            try:
                out = subprocess.run(
                    [
                        "nvidia-smi",
                        "--query-gpu=utilization.gpu",
                        "--format=csv,noheader,nounits",
                        "-i",
                        str(self.index),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=5,
                )
                return float(out.stdout.strip().splitlines()[0])
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return None

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            v = self._read()
            if v is None:
                return
            self.samples.append(v)

    def __enter__(self):
        if self.device.type == "cuda":
            self.index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.device.type == "cuda":
            self._thread.join(timeout=10)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.samples)) if self.samples else None


def later(values: list[float]) -> float:
    """Mean from epoch 2 on (epoch 1 carries warm-up: cuDNN autotuning, worker start-up, caches)."""
    return float(np.mean(values[1:] if len(values) > 1 else values))


# --- (a) MedTL ------------------------------------------------------------------------------------


def run_medtl(dcfg: DataConfig, mcfg: ModelConfig, device: torch.device, epochs: int, batch: int) -> dict:
    store = RunStore(tempfile.mkdtemp(prefix="bench-gpu-runs-"))
    tc = TrainConfig(epochs=epochs, batch_size=batch, patience=0, bootstrap=10, device=device.type)
    cfg = RunConfig(dcfg, mcfg, tc)
    rid = store.create(cfg)
    with torch.cuda.device(device) if device.type == "cuda" else _null(), Utilisation(device) as util:
        status = train.run(cfg, store, rid)
    if status["state"] != "done":
        raise RuntimeError(f"MedTL run failed: {status.get('error')}")
    hist = store.history(rid)
    seconds = [h["seconds"] for h in hist]
    n_train = load(dcfg).splits["train"].size
    steps_images = n_train - n_train % batch if n_train > batch else n_train  # drop_last, as the trainer
    out = {"s_per_epoch": later(seconds), "images_per_s": steps_images / later(seconds), "gpu_util": util.mean}
    if all("data_wait_s" in h for h in hist):
        out["data_wait_share"] = later([h["data_wait_s"] for h in hist]) / out["s_per_epoch"]
        out["data_wait_how"] = "history data_wait_s"
    else:  # the trainer does not record it: time its (synchronous) data path alone
        ds, gen = load(dcfg), torch.Generator().manual_seed(0)
        cl = device.type in ("cuda", "cpu")
        for _ in range(2):  # the second pass is the warm one
            t = time.perf_counter()
            for _x, _y, _i in batches(
                ds, "train", batch, device, shuffle=True, gen=gen, aug=AugmentConfig(), drop_last=True, channels_last=cl
            ):
                pass
            sync(device)
            took = time.perf_counter() - t
        out["data_wait_share"] = took / out["s_per_epoch"]
        out["data_wait_how"] = "data path alone / epoch"
    return out


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- (b) the TTL-style loop -------------------------------------------------------------------------


def run_ttl(files, labels, mcfg, size, device, epochs, batch, workers) -> dict:
    torch.manual_seed(0)
    model = build(mcfg, size, 1).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    pos = float(np.mean(labels))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([(1 - pos) / max(pos, 1e-6)], device=device))
    loader = torch.utils.data.DataLoader(
        JPEGDataset(files, labels, size, True),
        batch,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=len(files) > batch,
        persistent_workers=workers > 0,
    )
    times, n = [], 0
    with Utilisation(device) as util:
        for _ in range(epochs):
            model.train()
            t, n = time.perf_counter(), 0
            for x, y in loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                loss.item()  # what a user's loop does to log the loss
                n += len(x)
            sync(device)
            times.append(time.perf_counter() - t)
    return {"s_per_epoch": later(times), "images_per_s": n / later(times), "gpu_util": util.mean}


# --- (c) the ceiling: uint8 tensors already on the device -------------------------------------------------


def run_ceiling(images: np.ndarray, labels: np.ndarray, mcfg, size, device, epochs, batch) -> dict:
    torch.manual_seed(0)
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = True  # fixed shapes
    fmt = torch.channels_last
    model = build(mcfg, size, 1).to(device, memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4, fused=cuda)
    pos = float(labels.mean())
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([(1 - pos) / max(pos, 1e-6)], device=device))
    x_all = torch.from_numpy(np.ascontiguousarray(images)).to(device)  # (N, 1, H, W) uint8
    y_all = torch.from_numpy(labels.astype(np.float32)).to(device)[:, None]
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and torch.cuda.is_bf16_supported() else _null()
    n_all = len(x_all)
    steps = max(n_all // batch, 1)
    times = []
    with Utilisation(device) as util:
        for _ in range(epochs):
            model.train()
            t = time.perf_counter()
            perm = torch.randperm(n_all, device=device)
            total = torch.zeros((), device=device)
            for s in range(steps):
                idx = perm[s * batch : (s + 1) * batch]
                x = x_all[idx].float().div_(255).contiguous(memory_format=fmt)
                flip = torch.rand(len(idx), 1, 1, 1, device=device) < 0.5
                x = torch.where(flip, x.flip(-1), x)
                with amp:
                    loss = loss_fn(model(x).float(), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach()  # on the device: no host synchronisation per step
            total.item()
            times.append(time.perf_counter() - t)
    return {"s_per_epoch": later(times), "images_per_s": steps * batch / later(times), "gpu_util": util.mean}


# --- driver -------------------------------------------------------------------------------------------


def bench_case(label, mcfg, size, root, files, labels, device, epochs, batch, workers) -> dict:
    dcfg = DataConfig(dataset=f"folder:{root}", finding="pos", image_size=size)
    t = time.perf_counter()
    ds = load(dcfg)  # MedTL decodes the JPEGs once into its uint8 cache (not part of any epoch)
    decode_s = time.perf_counter() - t
    tr = ds.splits["train"]
    # as many training images as MedTL's training split, read from the JPEG files (as bench_train.py)
    pick = np.random.default_rng(0).permutation(len(files))[: tr.size]
    sub_files, sub_labels = [files[i] for i in pick], [labels[i] for i in pick]
    res = {"case": label, "px": size, "n_train": int(tr.size), "medtl_decode_s": decode_s}
    print(f"{label} at {size} px: MedTL", file=sys.stderr)
    res["medtl"] = run_medtl(dcfg, mcfg, device, epochs, batch)
    print(f"{label} at {size} px: TTL-style loop ({workers} workers)", file=sys.stderr)
    res["ttl"] = run_ttl(sub_files, sub_labels, mcfg, size, device, epochs, batch, workers)
    print(f"{label} at {size} px: ceiling", file=sys.stderr)
    res["ceiling"] = run_ceiling(ds.images[np.sort(tr)], ds.y(np.sort(tr)), mcfg, size, device, epochs, batch)
    res["medtl_vs_ttl"] = res["medtl"]["images_per_s"] / res["ttl"]["images_per_s"]
    res["medtl_vs_ceiling"] = res["medtl"]["images_per_s"] / res["ceiling"]["images_per_s"]
    print(json.dumps(res, indent=1), file=sys.stderr)
    return res


def table(results: list[dict]) -> str:
    pct = lambda v: "-" if v is None else f"{v:.0f}%"  # noqa: E731
    rows = [
        [
            r["case"],
            r["px"],
            f"{r['medtl']['images_per_s']:.0f} ({r['medtl']['s_per_epoch']:.2f} s)",
            f"{r['ttl']['images_per_s']:.0f} ({r['ttl']['s_per_epoch']:.2f} s)",
            f"{r['ceiling']['images_per_s']:.0f} ({r['ceiling']['s_per_epoch']:.2f} s)",
            f"{r['medtl_vs_ttl']:.1f}x",
            f"{r['medtl_vs_ceiling']:.2f}x",
            f"{r['medtl']['data_wait_share']:.0%}",
            " / ".join(pct(r[k]["gpu_util"]) for k in ("medtl", "ttl", "ceiling")),
        ]
        for r in results
    ]
    header = [
        "model",
        "px",
        "(a) MedTL img/s (s/epoch)",
        "(b) TTL-style img/s (s/epoch)",
        "(c) ceiling img/s (s/epoch)",
        "(a)/(b) target >= 3x",
        "(a)/(c) target >= 0.9x",
        "MedTL data wait (< 5%)",
        "GPU util a / b / c",
    ]
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda, cuda:N or cpu")
    ap.add_argument("--quick", action="store_true", help="a smoke test: few images, 2 epochs, smaller images")
    ap.add_argument("--n", type=int, help="JPEGs to write (default 5000; 80 with --quick)")
    ap.add_argument("--epochs", type=int, help="epochs per loop, the first is warm-up (default 4; 2 with --quick)")
    ap.add_argument("--batch", type=int, help="batch size (default 256 on CUDA, 16 with --quick, else 32)")
    ap.add_argument(
        "--workers", type=int, default=os.cpu_count(), help="TTL loop's DataLoader workers (default: cores)"
    )
    ap.add_argument("--out", help="JSON file (default benchmarks/results/gpu.json; _work/gpu-quick.json with --quick)")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {a.device}: no CUDA GPU is visible here; use --device cpu")
    n = a.n or (80 if a.quick else 5000)
    epochs = a.epochs or (2 if a.quick else 4)
    batch = a.batch or (256 if device.type == "cuda" else 16 if a.quick else 32)
    work = HERE / "_work"
    os.environ.setdefault("MEDTL_CACHE", str(work / "cache-gpu"))  # MedTL's decoded-image cache
    t = time.perf_counter()
    root = export_synth_jpegs(work / f"jpeg-gpu-{n}", n)
    print(f"{n} JPEGs at 320x390 in {root} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    files = sorted(root.rglob("*.jpg"))
    labels = [float(f.parent.name == "pos") for f in files]
    results = [
        bench_case(
            label, mcfg, QUICK_SIZES[label] if a.quick else size, root, files, labels, device, epochs, batch, a.workers
        )
        for label, mcfg, size in CASES
    ]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    meta = {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "cores": os.cpu_count(),
        "n_jpegs": n,
        "epochs": epochs,
        "batch": batch,
        "workers": a.workers,
        "quick": a.quick,
    }
    text = (
        f"{name} ({device}), torch {torch.__version__}, {os.cpu_count()} cores; {n} JPEGs at 320x390, batch {batch}, "
        f"{epochs} epochs (training only, epoch 2 on){'; QUICK smoke test' if a.quick else ''}\n\n" + table(results)
    )
    print(text)
    out = Path(a.out) if a.out else (work / "gpu-quick.json" if a.quick else HERE / "results" / "gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results, "table": text}, indent=1))
    print(f"wrote {out}", file=sys.stderr)
    return {"meta": meta, "results": results}


if __name__ == "__main__":
    main()
