"""Datasets: ``load(DataConfig) -> ImageSet`` for SynthCXR and real data, splits and regimes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medtl.config import DataConfig
from medtl.data import adapters, decode
from medtl.data.cache import Arrays, Manifest, Progress, decode_manifest, load_or_build
from medtl.data.imageset import SPLITS, ImageSet, apply_regime, grouped_split
from medtl.data.saturation import data_warnings, pixel_counts, saturation
from medtl.datasets import get_kind

__all__ = ["ImageSet", "load", "SPLITS", "Preflight", "preflight", "targets", "data_warnings", "saturation"]

OTHER_PREVALENCE = 0.15  # SynthCXR findings other than the target


def synthetic_arrays(cfg: DataConfig, progress: Progress | None) -> tuple[Arrays, Callable]:
    """SynthCXR's images (generated once, cached) and a function drawing their lesion masks."""
    from medtl.data import synth

    target = cfg.finding or get_kind("synthetic").default_finding
    prev = {f: (cfg.prevalence if target in (f, "all") else OTHER_PREVALENCE) for f in synth.FINDINGS}
    kw = dict(size=cfg.image_size, seed=0, prevalence=prev, difficulty=cfg.difficulty)

    def build() -> Arrays:
        images, labels, _ = synth.generate(cfg.n_images, progress=progress is None, **kw)
        return Arrays(images, labels, synth.FINDINGS, None, None, {"source": "SynthCXR (embedded)", "skipped": 0})

    key = {"kind": "synthetic", "version": synth.VERSION, "n": cfg.n_images, **kw}
    arrays = load_or_build(key, build)
    return arrays, lambda idx: synth.generate(0, indices=idx, **kw)[2]


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Square uint8 images to ``size`` (antialiased bilinear), in chunks."""
    import torch
    import torch.nn.functional as F

    out = np.empty((*images.shape[:2], size, size), np.uint8)
    for s in range(0, len(images), 2048):
        x = torch.from_numpy(np.ascontiguousarray(images[s : s + 2048])).float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[s : s + 2048] = y.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def _arrays(cfg: DataConfig, progress: Progress | None) -> tuple[Arrays, Callable | None]:
    """What the kind's loader gives, decoded / resized to ``cfg.image_size`` and cached."""
    got = get_kind(cfg.kind).load_function()(cfg, progress)
    if isinstance(got, tuple):  # (arrays, mask function): the loader cached them itself
        return got
    if isinstance(got, Manifest):
        key = {"kind": cfg.kind, "size": cfg.image_size, "skip_bad": cfg.skip_bad, "files": got.fingerprint()}
        key["decode"] = decode.VERSION  # entries decoded before full bit depth (no version) are rebuilt
        arrays = load_or_build(key, lambda: decode_manifest(got, cfg.image_size, cfg.skip_bad, progress))
        arrays.info["target_note"] = got.note
        return arrays, None
    if got.images.shape[-1] != cfg.image_size:  # arrays at their own size (MedMNIST)
        key = {"kind": cfg.kind, "source": cfg.source, "size": cfg.image_size, "n": len(got.images)}
        raw = got
        cached = load_or_build(
            key, lambda: Arrays(**{**raw.__dict__, "images": _resize(raw.images, cfg.image_size), "pixel_counts": None})
        )
        # only the resized images come from the cache: the labels, names and splits are the loader's of this
        # config (another target of the same file at the same size once got the first target's labels)
        got = Arrays(**{**raw.__dict__, "images": cached.images, "pixel_counts": None})
    return got, None


def _target(cfg: DataConfig, names: tuple[str, ...]) -> int | None:
    if cfg.finding == "all":
        return None
    if cfg.finding is None or len(names) == 1:  # one label: the loader has applied the finding
        return 0
    if cfg.finding.isdigit() and cfg.finding not in names:
        i = int(cfg.finding)
        if i >= len(names):
            raise ValueError(
                f"Label index {i} is out of range: the dataset has {len(names)} labels ({', '.join(names)})"
            )
        return i
    return names.index(adapters._match(cfg.finding, names, "label"))


def load(cfg: DataConfig, progress: Progress | None = None) -> ImageSet:
    """The images, labels and splits for ``cfg``, with the data-poor regime applied.

    The first load decodes (or generates) and caches; later loads memory-map the cache.
    ``progress(done, total, what)`` is called while decoding; without it a tqdm bar is shown.
    """
    arrays, mask_fn = _arrays(cfg, progress)
    target = _target(cfg, arrays.label_names)
    labels = arrays.labels
    if np.isnan(labels).any():
        raise ValueError("Labels contain missing values")
    split = arrays.split
    fractions = {"test": cfg.test_fraction, "val": cfg.val_fraction}
    fractions["train"] = 1 - sum(fractions.values())
    y = labels if target is None else labels[:, target]
    if split is None or not np.isin(split, SPLITS).any():
        splits = grouped_split(y, arrays.groups, fractions, cfg.split_seed)
    else:
        splits = {s: np.flatnonzero(split == s) for s in SPLITS}
        if splits["test"].size == 0:
            raise ValueError("The dataset's official splits have no test images")
        if splits["val"].size == 0:  # carve validation out of train, grouped by patient
            tr = splits["train"]
            g = None if arrays.groups is None else arrays.groups[tr]
            part = grouped_split(y[tr], g, {"val": cfg.val_fraction, "train": 1 - cfg.val_fraction}, cfg.split_seed)
            splits["val"], splits["train"] = tr[part["val"]], tr[part["train"]]
    pixels = arrays.pixel_counts if arrays.pixel_counts is not None else pixel_counts(arrays.images)
    data = ImageSet(
        arrays.images, labels, arrays.label_names, splits, target, arrays.groups, mask_fn, dict(arrays.info), pixels
    )
    counts = data.counts()
    total = sum(c["n"] for c in counts.values())
    for name, c in counts.items():
        if c["n"] == 0:
            raise ValueError(
                f"The {name} split of {cfg.dataset} is empty ({total} images in all: "
                + ", ".join(f"{k} {v['n']}" for k, v in counts.items())
                + "): add images (at least a few of each class per split)"
            )
        if target is not None and c["n_pos"] in (0, c["n"]):
            cls = "positive" if c["n_pos"] == 0 else "negative"
            raise ValueError(
                f"The {name} split of {cfg.dataset} has no {cls} image for {data.target_name!r} "
                f"({c['n']} images, {int(c['n_pos'])} positive): a classifier needs both classes; add {cls} images"
            )
    return apply_regime(data, cfg.train_size, cfg.seed)


def targets(cfg: DataConfig) -> tuple[list, str | None]:
    """The targets ``cfg``'s dataset offers, with counts, and the one chosen when none is given (None:
    the data does not single one out): the kind record's ``targets`` function, reading labels and file
    names only. Kinds without one offer none (``([], None)``)."""
    kind = get_kind(cfg.kind)
    return kind.function(kind.targets)(cfg) if kind.targets else ([], None)


@dataclass(frozen=True)
class Preflight:
    """What :func:`preflight` found that does not stop a run."""

    note: str  # how the positive class was chosen from the data ("" when there was none to choose)
    warnings: tuple[str, ...]  # :func:`data_warnings` of the loaded data


def preflight(cfg: DataConfig) -> Preflight:
    """Everything about the data that would make a run fail, found before a run is recorded: the
    path, the target, empty splits or splits with one class only, too few positives for the
    training size (raised). Loads the data (cached, so the run's own load is quick). Returns the
    note on a positive class chosen from the data and the data's warnings (e.g. saturated pixels)."""
    note = adapters.check_source(cfg)
    return Preflight(note, tuple(data_warnings(load(cfg))))
