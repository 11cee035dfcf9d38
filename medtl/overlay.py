"""Saliency maps drawn over their images: an RGB overlay with the lesion's outline, and PNG bytes."""

from __future__ import annotations

import io

import numpy as np

from medtl.data.preview import outline


def overlay(
    image: np.ndarray, cam: np.ndarray, mask: np.ndarray | None = None, alpha: float = 0.45, cmap: str = "jet"
) -> np.ndarray:
    """RGB uint8: the grayscale image with the normalised map blended in colour where it is strong
    (the blend weight grows with the map, so the radiograph stays readable), optional mask outline (white)."""
    import matplotlib

    gray = image[0] if image.ndim == 3 else image
    base = np.repeat(gray[..., None].astype(np.float32) / 255, 3, -1)
    peak = cam.max()
    norm = cam / peak if peak > 0 else np.zeros_like(cam)
    heat = matplotlib.colormaps[cmap](norm)[..., :3]
    w = (alpha + (1 - alpha) * 0.4) * norm[..., None]
    rgb = (1 - w) * base + w * heat
    if mask is not None:
        rgb[outline(mask.astype(bool))] = 1.0
    return (rgb * 255 + 0.5).astype(np.uint8)


def to_png(rgb: np.ndarray, scale: int = 1) -> bytes:
    """PNG bytes of an RGB uint8 image, enlarged ``scale`` times with nearest-neighbour pixels."""
    from PIL import Image

    im = Image.fromarray(rgb)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
