"""Reading one image file (PNG, JPEG, DICOM, ...) into a square uint8 grayscale array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", *DICOM_SUFFIXES)


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


def read_image(path: str | Path, size: int) -> np.ndarray:
    """Decode, convert to grayscale, resize keeping the aspect ratio and pad to ``size`` x ``size``.

    Raises:
        ValueError: the file cannot be decoded; the message names it.
    """
    p = Path(path)
    try:
        if p.suffix.lower() in DICOM_SUFFIXES:
            im = Image.fromarray(read_dicom(p))
        else:
            with Image.open(p) as f:
                im = f.convert("L")
        return np.asarray(ImageOps.pad(im, (size, size), method=Image.Resampling.BILINEAR, color=0))
    except FileNotFoundError:
        raise FileNotFoundError(f"Image file {p} does not exist") from None
    except Exception as e:  # noqa: BLE001 - any decoder failure means an unreadable image
        raise ValueError(f"Cannot read image {p}: {type(e).__name__}: {e}") from None
