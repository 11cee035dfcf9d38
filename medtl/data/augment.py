"""The training data path on tensors: batches from uint8 arrays, augmentation on the device.

Images stay uint8 until a batch is on its device; augmentation is one batched affine warp
(random resized crop with a mild scale range, small rotation, optional horizontal flip) through
``affine_grid``/``grid_sample``, driven by a seeded ``torch.Generator``. Normalisation is done by
the model's input adapter (:class:`medtl.models.transfer.InputAdapter`), with the statistics of
:func:`normalization_stats`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from medtl.data.imageset import ImageSet


@dataclass(frozen=True)
class AugmentConfig:
    scale: tuple[float, float] = (0.85, 1.0)  # area kept by the random crop
    ratio: tuple[float, float] = (0.9, 1.1)  # aspect ratio of the crop
    degrees: float = 7.0
    hflip: bool = False  # radiographs have a left and a right: off by default


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Random resized crop + rotation (+ flip) of a float batch (B, C, H, W), in one warp."""
    b = x.shape[0]
    r = torch.rand(b, 5, generator=gen, device="cpu")
    area = cfg.scale[0] + (cfg.scale[1] - cfg.scale[0]) * r[:, 0]
    log_ratio = math.log(cfg.ratio[0]) + (math.log(cfg.ratio[1]) - math.log(cfg.ratio[0])) * r[:, 1]
    ratio = torch.exp(log_ratio)
    sx, sy = torch.sqrt(area * ratio).clamp(max=1), torch.sqrt(area / ratio).clamp(max=1)
    tx, ty = (1 - sx) * (2 * r[:, 2] - 1), (1 - sy) * (2 * r[:, 3] - 1)
    theta_r = (2 * r[:, 4] - 1) * math.radians(cfg.degrees)
    cos, sin = torch.cos(theta_r), torch.sin(theta_r)
    flip = torch.ones(b)
    if cfg.hflip:
        flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.stack(
        [torch.stack([cos * sx * flip, -sin * sy, tx], 1), torch.stack([sin * sx * flip, cos * sy, ty], 1)], 1
    )
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def to_float(batch_u8: np.ndarray, device: torch.device | str, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 in [0, 1] on ``device`` (the copy moves 1 byte a pixel)."""
    t = torch.from_numpy(np.ascontiguousarray(batch_u8))
    dev = torch.device(device)
    if dev.type == "cuda":
        t = t.pin_memory().to(dev, non_blocking=True)
    x = t.to(dev).float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def batches(
    data: ImageSet,
    split: str,
    batch_size: int,
    device: torch.device | str = "cpu",
    shuffle: bool = False,
    gen: torch.Generator | None = None,
    aug: AugmentConfig | None = None,
    drop_last: bool = False,
    channels_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
    """Yield ``(images, targets, indices)`` for a split; augmentation when ``aug`` is given."""
    idx = data.splits[split]
    if shuffle:
        idx = idx[torch.randperm(idx.size, generator=gen).numpy()]
    stop = idx.size - (idx.size % batch_size if drop_last and idx.size > batch_size else 0)
    for s in range(0, stop, batch_size):
        b = np.sort(idx[s : s + batch_size])  # sorted reads are friendlier to a memory map
        x = to_float(data.images[b], device, channels_last)
        if aug is not None:
            x = augment(x, aug, gen)
        y = torch.from_numpy(np.asarray(data.y(b), np.float32)).to(x.device)
        yield x, y, b


def normalization_stats(data: ImageSet, max_images: int = 2000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] of (a sample of) the training split."""
    idx = data.splits["train"]
    if idx.size > max_images:
        idx = np.sort(np.random.default_rng(0).choice(idx, max_images, replace=False))
    x = np.asarray(data.images[idx], np.float32) / 255
    return x.mean(axis=(0, 2, 3)).tolist(), np.maximum(x.std(axis=(0, 2, 3)), 1e-3).tolist()
