"""Preprocessing cache: decode once, store uint8 arrays keyed by a hash of what produced them.

A cache entry is a folder ``$MEDTL_CACHE/<key>/`` (default ``~/.cache/medtl``) holding
``images.npy`` (memory-mapped on load, so large sets need not fit in memory), ``meta.npz``
(labels, groups, per-image split names, label names) and ``pixel_counts.npy`` (per image: pixel
values, values at 0 and at 255; see :mod:`medtl.data.saturation`). Entries are written to a
temporary folder and renamed into place, so an interrupted build never leaves a half-written
entry. An entry from before pixel counts existed gets them counted on its first load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtl.data.decode import read_fitted
from medtl.data.saturation import content_counts, pixel_counts

Progress = Callable[[int, int, str], None]


def cache_dir() -> Path:
    return Path(os.environ.get("MEDTL_CACHE") or Path.home() / ".cache" / "medtl").expanduser()


def key_of(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass
class Arrays:
    """What a cache entry holds."""

    images: np.ndarray  # (N, C, H, W) uint8
    labels: np.ndarray  # (N, L) float32
    label_names: tuple[str, ...]
    groups: np.ndarray | None  # (N,) str
    split: np.ndarray | None  # (N,) str: train / val / test / "" (unassigned)
    info: dict
    pixel_counts: np.ndarray | None = None  # (N, 3) int64; None: counted from ``images`` when stored


def _atomic_save(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, arr)
    os.replace(tmp, path)


def _counts(folder: Path, images: np.ndarray) -> np.ndarray:
    """The entry's pixel counts; an entry built before they existed is counted now, and the counts
    stored where the folder is writable (a read-only shared cache counts at every load)."""
    f = folder / "pixel_counts.npy"
    if f.is_file():
        return np.load(f)
    counts = pixel_counts(images)
    with contextlib.suppress(OSError):
        _atomic_save(f, counts)
    return counts


def _read(folder: Path) -> Arrays:
    with np.load(folder / "meta.npz", allow_pickle=False) as meta:
        labels, names = meta["labels"], tuple(meta["label_names"].tolist())
        groups, split = meta.get("groups", None), meta.get("split", None)
    info = json.loads((folder / "info.json").read_text())
    images = np.load(folder / "images.npy", mmap_mode="r")  # memory-mapped: large sets need not fit in memory
    return Arrays(images, labels, names, groups, split, {**info, "cached": str(folder)}, _counts(folder, images))


def load_or_build(key: object, build: Callable[[], Arrays]) -> Arrays:
    """The cached arrays for ``key``, building and storing them on first use."""
    folder = cache_dir() / key_of(key)
    if (folder / "meta.npz").is_file():
        return _read(folder)
    arrays = build()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    try:
        np.save(tmp / "images.npy", np.ascontiguousarray(arrays.images))
        counts = pixel_counts(arrays.images) if arrays.pixel_counts is None else arrays.pixel_counts
        np.save(tmp / "pixel_counts.npy", counts)
        extra = {k: v for k, v in (("groups", arrays.groups), ("split", arrays.split)) if v is not None}
        np.savez(tmp / "meta.npz", labels=arrays.labels, label_names=np.array(arrays.label_names), **extra)
        (tmp / "info.json").write_text(json.dumps({**arrays.info, "key": key}, default=str, indent=1))
        os.replace(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "meta.npz").is_file():  # another process may have built the same entry meanwhile
            raise
    return _read(folder)


@dataclass
class Manifest:
    """Image files and their labels, as an adapter lists them (before decoding)."""

    paths: list[Path]
    labels: np.ndarray  # (N, L) float32; NaN = uncertain label to ignore
    label_names: tuple[str, ...]
    groups: np.ndarray | None = None
    split: np.ndarray | None = None
    description: str = ""
    note: str = ""  # how the target was chosen, when the data chose it (shown, not cached)

    def fingerprint(self) -> list:
        """Paths with sizes and modification times: an edited file changes the cache key."""
        out = []
        for p in self.paths:
            try:
                st = p.stat()
                out.append((str(p), st.st_size, int(st.st_mtime)))
            except OSError:
                out.append((str(p), -1, -1))
        return [out, self.labels.tolist(), list(self.label_names), None if self.split is None else self.split.tolist()]


def decode_manifest(m: Manifest, size: int, skip_bad: bool, progress: Progress | None = None) -> Arrays:
    """Decode every file of a manifest to (N, 1, size, size) uint8, with a progress bar, and count
    each image's pixels at 0 and 255 (its own pixels, not the padding that squares it).

    Raises:
        ValueError / FileNotFoundError: an unreadable file (named), unless ``skip_bad``: then it is
            left out and counted in ``info["skipped"]``.
    """
    from tqdm.auto import tqdm

    images = np.empty((len(m.paths), 1, size, size), np.uint8)
    counts = np.zeros((len(m.paths), 3), np.int64)
    ok = np.ones(len(m.paths), bool)
    bad: list[str] = []
    bar = tqdm(total=len(m.paths), desc=f"decoding {size}px", unit="img", disable=progress is not None)
    for i, p in enumerate(m.paths):
        try:
            images[i, 0], content = read_fitted(p, size)
            counts[i] = content_counts(content)
        except (ValueError, FileNotFoundError) as e:
            if not skip_bad:
                raise type(e)(
                    f"{e}. Fix or remove the file, or set skip_bad (--skip-bad) to leave unreadable images out"
                ) from None
            ok[i] = False
            bad.append(str(p))
        bar.update()
        if progress and (i % 50 == 0 or i + 1 == len(m.paths)):
            progress(i + 1, len(m.paths), "decoding images")
    bar.close()
    if not ok.any():
        raise ValueError(f"None of the {len(m.paths)} images could be read (first: {bad[0] if bad else '-'})")
    sel = lambda a: None if a is None else a[ok]  # noqa: E731
    info = {"source": m.description, "skipped": len(bad), "skipped_files": bad[:20]}
    return Arrays(images[ok], m.labels[ok], m.label_names, sel(m.groups), sel(m.split), info, counts[ok])
