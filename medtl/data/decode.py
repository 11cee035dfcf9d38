"""Reading one image file (PNG, JPEG, TIFF, DICOM, ...) into a square uint8 grayscale array.

8-bit files (grayscale, RGB, palette) go through Pillow's ``convert("L")``. Files of more than 8
bits (16-bit PNG and TIFF: Pillow modes ``I;16*``, ``I``, ``F``) are read at full depth and
windowed to 8 bits per image (:func:`window`): ``convert("L")`` would clip them (a 12-bit
radiograph reads as mostly white). DICOM keeps its own modality LUT and VOI window
(:func:`read_dicom`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", *DICOM_SUFFIXES)
VERSION = 2  # bump when a file decodes to other pixels: decoded caches are keyed by it (2: full bit depth)

HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # Pillow modes of more than 8 bits
WINDOW_PERCENTILES = (0.5, 99.5)
_WINDOW_SAMPLES = 1 << 20  # percentiles from a regular grid of at most ~1M pixels (a 3000 px image: 10 ms, not 280)
_COLOUR_16 = (";16B", ";16L", ";16N")  # raw modes of 16 bits per colour channel, which Pillow reads at 8


def window(values: np.ndarray) -> np.ndarray:
    """Full-depth grayscale values as uint8 through a per-image percentile window.

    The 0.5th..99.5th percentiles of the image map linearly to 0..255 (values beyond them clip).
    A 16-bit file does not say which of its values matter (12-bit detectors store 0..4095, others
    use an arbitrary offset and range), so the image's own distribution sets the window, as a
    viewer's auto-window does; the 0.5% tails keep a few hot or dead pixels and burned-in text
    from flattening the rest. Where the two percentiles coincide (a nearly uniform image with a
    small detail) the window is min..max; a constant image maps to 0. Non-finite values map to 0.
    """
    v = np.asarray(values)
    finite = np.isfinite(v) if v.dtype.kind == "f" else None
    sample = v if finite is None or finite.all() else v[finite]
    if sample.size == 0:
        return np.zeros(v.shape, np.uint8)
    step = int(np.ceil(np.sqrt(v.size / _WINDOW_SAMPLES)))
    grid = sample[::step, ::step] if sample.ndim == 2 else sample[:: step * step]
    lo, hi = (float(q) for q in np.percentile(grid, WINDOW_PERCENTILES))
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        return np.zeros(v.shape, np.uint8)
    # float32 holds 16-bit and float32 values exactly, and larger integers where the window lies
    # inside +-2**24 (values beyond it clip anyway)
    exact32 = v.dtype.itemsize <= 2 or v.dtype == np.float32 or (v.dtype.kind in "iu" and max(-lo, hi) < 2**24)
    x = v.astype(np.float32 if exact32 else np.float64)
    x -= lo
    x *= 255 / (hi - lo)
    np.clip(x, 0, 255, out=x)
    x += 0.5
    if finite is not None:
        x[~finite] = 0
    return x.astype(np.uint8)


def read_dicom(path: Path) -> np.ndarray:
    """A DICOM image as 8-bit grayscale: modality LUT, window (from the file or min-max), MONOCHROME1 inverted."""
    import pydicom
    from pydicom.pixels import apply_modality_lut

    ds = pydicom.dcmread(str(path))
    arr = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    if arr.ndim == 3:  # multi-frame: the first frame
        arr = arr[0]
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        c = float(center[0] if isinstance(center, pydicom.multival.MultiValue) else center)
        w = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
        lo, hi = c - w / 2, c + w / 2
    else:
        lo, hi = float(arr.min()), float(arr.max())
    arr = np.clip((arr - lo) / max(hi - lo, 1e-6), 0, 1)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        arr = 1 - arr
    return (arr * 255 + 0.5).astype(np.uint8)


class BitDepthError(ValueError):
    """A file whose bit depth Pillow cannot read in full (16 bits per colour channel)."""


def _raw_modes(f: Image.Image) -> list[str]:
    return [t.args if isinstance(t.args, str) else str(t.args[0]) for t in getattr(f, "tile", []) if t.args]


def read_gray(path: Path) -> Image.Image:
    """The file as an 8-bit grayscale (mode ``L``) image at its own size.

    Raises:
        BitDepthError: a file of 16 bits per colour channel (RGB or gray + alpha), which Pillow
            would silently reduce to 8 bits; the message names the file and how to convert it.
    """
    if path.suffix.lower() in DICOM_SUFFIXES:
        return Image.fromarray(read_dicom(path))
    with Image.open(path) as f:
        if f.mode in HIGH_DEPTH_MODES:
            return Image.fromarray(window(np.asarray(f)))
        deep = [r for r in _raw_modes(f) if r.endswith(_COLOUR_16)]
        if deep:
            raise BitDepthError(
                f"Cannot read image {path}: it has 16 bits per colour channel ({deep[0]}), which Pillow reads "
                "at 8 bits; save it as 16-bit grayscale (PNG or TIFF), which MedTL windows at full depth, or as 8-bit"
            )
        return f.convert("L")


def read_fitted(path: str | Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``size`` x ``size`` image of :func:`read_image` and the resized image inside its padding.

    The second array holds the image's own pixels only (the padding of a non-square image is
    not image content), for saturation counts.
    """
    p = Path(path)
    try:
        im = ImageOps.contain(read_gray(p), (size, size), method=Image.Resampling.BILINEAR)
        # pad() of an image that already fits only pastes it: the same pixels as pad() of the original
        padded = ImageOps.pad(im, (size, size), method=Image.Resampling.BILINEAR, color=0)
        return np.asarray(padded), np.asarray(im)
    except FileNotFoundError:
        raise FileNotFoundError(f"Image file {p} does not exist") from None
    except BitDepthError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure means an unreadable image
        raise ValueError(f"Cannot read image {p}: {type(e).__name__}: {e}") from None


def read_image(path: str | Path, size: int) -> np.ndarray:
    """Decode, convert to grayscale (16-bit: :func:`window`), resize keeping the aspect ratio and pad
    to ``size`` x ``size``.

    Raises:
        ValueError: the file cannot be decoded; the message names it.
    """
    return read_fitted(path, size)[0]
