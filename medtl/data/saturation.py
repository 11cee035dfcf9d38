"""Saturation: the share of pixel values at 0 and at 255 per split, and the warnings it gives.

A split whose pixels pile up at 255 usually holds images that lost their range before MedTL read
them (16-bit radiographs converted to 8 bits by clipping, over-exposure, a window too narrow);
at 0, under-exposure, a window set too high, or large black borders. Per-image counts are taken
once, when the cache is built (decoded files: the image's own pixels, not the padding that squares
a non-square image), so a load only sums a small (N, 3) array per split.
"""

from __future__ import annotations

import numpy as np

from medtl.data.imageset import SPLITS, ImageSet

LIMIT = 0.2  # warn when more than this share of a split's pixel values is at 0, or at 255
COLUMNS = ("values", "at_0", "at_255")  # the columns of a pixel-counts array


def content_counts(image: np.ndarray) -> np.ndarray:
    """(3,) int64: the number of values of one uint8 image, and how many are 0 and 255."""
    return np.array([image.size, np.count_nonzero(image == 0), np.count_nonzero(image == 255)], np.int64)


def pixel_counts(images: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(N, 3) int64 :func:`content_counts` of every image of a uint8 (N, C, H, W) array, in chunks
    (a memory-mapped array is read once, never held whole)."""
    out = np.empty((len(images), 3), np.int64)
    out[:, 0] = int(np.prod(images.shape[1:]))
    for s in range(0, len(images), chunk):
        x = np.asarray(images[s : s + chunk]).reshape(min(chunk, len(images) - s), -1)
        out[s : s + chunk, 1] = np.count_nonzero(x == 0, axis=1)
        out[s : s + chunk, 2] = np.count_nonzero(x == 255, axis=1)
    return out


def saturation(data: ImageSet) -> dict[str, dict[str, float]]:
    """Per split: ``at_0`` and ``at_255``, the shares of its pixel values at 0 and at 255 (NaN for
    an empty split). Padding added to square a non-square file is not counted."""
    counts = data.pixel_counts
    out = {}
    for name in SPLITS:
        idx = data.splits.get(name, np.empty(0, np.int64))
        c = (counts[idx] if counts is not None else pixel_counts(data.images[np.sort(idx)])).sum(0)
        out[name] = {k: float(c[i] / c[0]) if c[0] else float("nan") for i, k in ((1, "at_0"), (2, "at_255"))}
    return out


_CAUSES = {
    "at_255": (
        "255 (white)",
        "images that lost their range before MedTL read them (16-bit radiographs converted to 8 bits by "
        "clipping), over-exposed images, or a display window too narrow",
        "give MedTL the original 16-bit PNG, TIFF or DICOM files (it windows them itself) or re-export the "
        "images with a wider window",
    ),
    "at_0": (
        "0 (black)",
        "under-exposed images, a display window set too high, or large black borders around the anatomy "
        "(harmless if the images look right)",
        "re-export the images with a lower window or crop the borders",
    ),
}


def data_warnings(data: ImageSet) -> list[str]:
    """Plain sentences about the data that loads but may train badly: splits with more than
    :data:`LIMIT` of their pixel values at 0 or at 255, with the likely cause and what to do.
    An empty list when nothing is suspicious."""
    shares = saturation(data)
    out = []
    for key, (what, causes, fix) in _CAUSES.items():
        high = {s: v[key] for s, v in shares.items() if v[key] > LIMIT}
        if high:
            names = list(high)
            splits = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            one = len(names) == 1
            out.append(
                f"The {splits} split{'' if one else 's'} {'has' if one else 'have'} more than {LIMIT:.0%} of "
                f"{'its' if one else 'their'} pixels at {what}: "
                + ", ".join(f"{s} {v:.0%}" for s, v in high.items())
                + f". Likely: {causes}. Look at a few images (the data preview, or python -m medtl data ... "
                f"--preview sheet.png); {fix}."
            )
    return out
