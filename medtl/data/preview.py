"""Contact sheets: a grid of images with their labels and (where known) lesion-mask outlines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from medtl.data.imageset import ImageSet

MASK_COLORS = ((230, 60, 60), (60, 200, 90), (70, 140, 255), (250, 190, 40), (200, 90, 220), (40, 200, 200))


def outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a boolean mask (inside, with a 4-neighbour outside)."""
    m = np.pad(mask, 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask & ~inner


def tile(image: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """An RGB uint8 tile of one (C, H, W) image with optional (L, H, W) mask outlines."""
    img = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    rgb = np.repeat(img[..., None], 3, -1).copy() if img.ndim == 2 else img.copy()
    if masks is not None:
        for k, m in enumerate(masks):
            rgb[outline(m)] = MASK_COLORS[k % len(MASK_COLORS)]
    return rgb


def contact_sheet(
    data: ImageSet, indices: np.ndarray | None = None, n: int = 16, cols: int = 4, scale: int = 2, seed: int = 0
) -> Image.Image:
    """A grid of ``n`` images (positives and negatives mixed) captioned with their labels."""
    if indices is None:
        idx = data.splits["test"] if data.splits["test"].size else np.arange(len(data.images))
        y = data.y(idx)
        pos = idx[(y if y.ndim == 1 else y.max(1)) > 0]
        neg = idx[(y if y.ndim == 1 else y.max(1)) == 0]
        rng = np.random.default_rng(seed)
        k = min(pos.size, max((n + 1) // 2, n - neg.size))  # half positives, more if negatives run short
        indices = np.r_[rng.choice(pos, k, replace=False), rng.choice(neg, min(neg.size, n - k), replace=False)]
    indices = np.sort(np.asarray(indices))[:n]
    masks = data.masks(indices)
    size = data.image_size * scale
    rows = (len(indices) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * size, rows * (size + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, ix in enumerate(indices):
        t = tile(np.asarray(data.images[ix]), None if masks is None else masks[i])
        im = Image.fromarray(t).resize((size, size), Image.Resampling.NEAREST)
        x, y0 = (i % cols) * size, (i // cols) * (size + 14)
        sheet.paste(im, (x, y0))
        names = [n for n, v in zip(data.label_names, data.labels[ix], strict=True) if v > 0]
        caption = f"#{ix} " + (", ".join(names) or "no finding")
        max_chars = size // 6
        draw.text(
            (x + 2, y0 + size + 1),
            caption if len(caption) <= max_chars else caption[: max_chars - 1] + "…",
            fill=(0, 0, 0),
        )
    return sheet


def save_contact_sheet(data: ImageSet, path: str | Path, **kw) -> Path:
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ValueError(f"--preview writes a PNG: the file name must end in .png. Got {p}")
    p.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(data, **kw).save(p)
    return p
