"""ImageSet: images, labels, splits; and the split and data-poor subsampling rules.

Splits are index arrays. Official splits are used where a dataset has them; otherwise a seeded
split stratified by label and grouped by patient (no patient in two splits). The data-poor
regime keeps a fraction or a count of the training split, stratified by label and **nested**:
for one seed, the 5% subset lies inside the 10% subset. Validation is subsampled the same way;
the test split never changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from medtl.datasets import parse_train_size

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ImageSet:
    """A dataset in memory (or memory-mapped).

    Attributes:
        images: uint8 (N, C, H, W).
        labels: float32 (N, L) multi-hot (0/1); ``target`` picks the column of a binary task.
        label_names: L names.
        splits: split name -> int64 indices into the arrays.
        groups: patient id per image (for grouped splits), or None.
        mask_fn: indices -> bool masks (n, L, H, W), where the dataset has lesion masks.
        info: description: source, skipped files, ...
        pixel_counts: int64 (N, 3) per image: pixel values, values at 0, at 255 (see
            :mod:`medtl.data.saturation`), or None (then counted from ``images`` when asked).
    """

    images: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    splits: dict[str, np.ndarray]
    target: int | None = 0
    groups: np.ndarray | None = None
    mask_fn: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    info: dict = field(default_factory=dict)
    pixel_counts: np.ndarray | None = field(default=None, repr=False)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def target_name(self) -> str:
        return "all" if self.target is None else self.label_names[self.target]

    @cached_property
    def exclusive(self) -> bool:
        """All labels at once (``target`` None) of a multi-class dataset: exactly one of 3+ classes per
        image (e.g. a MedMNIST class-id file with ``finding="all"``). Trained with softmax cross-entropy."""
        return self.target is None and self.labels.shape[1] > 2 and bool(np.all(self.labels.sum(axis=1) == 1))

    def y(self, indices: np.ndarray | None = None) -> np.ndarray:
        """Targets: (n,) for a binary task, (n, L) for multi-label."""
        lab = self.labels if indices is None else self.labels[indices]
        return lab if self.target is None else lab[:, self.target]

    def masks(self, indices: np.ndarray) -> np.ndarray | None:
        """Lesion masks (n, L, H, W) of the given images, or None where the dataset has none."""
        return None if self.mask_fn is None else self.mask_fn(np.asarray(indices))

    def counts(self) -> dict[str, dict[str, float]]:
        """Per split: n, positives and prevalence of the target (any label for multi-label)."""
        out = {}
        for name in SPLITS:
            idx = self.splits.get(name, np.empty(0, np.int64))
            y = self.y(idx)
            pos = int((y if y.ndim == 1 else y.max(axis=1)).sum()) if idx.size else 0
            out[name] = {"n": int(idx.size), "n_pos": pos, "prevalence": pos / idx.size if idx.size else float("nan")}
        return out

    def with_splits(self, splits: dict[str, np.ndarray], **info) -> ImageSet:
        return replace(self, splits=splits, info={**self.info, **info})


def _strat_key(labels: np.ndarray) -> np.ndarray:
    """One stratum per image: the binary target, or 'any finding' for multi-label."""
    return (labels if labels.ndim == 1 else labels.max(axis=1)).astype(np.int64)


def grouped_split(
    labels: np.ndarray, groups: np.ndarray | None, fractions: dict[str, float], seed: int = 0
) -> dict[str, np.ndarray]:
    """Seeded split stratified by label and grouped by patient.

    Groups (patients) are shuffled within their stratum (does the patient have any positive
    image) and dealt to the splits in proportion, so no patient lies in two splits.
    """
    n = labels.shape[0]
    groups = np.arange(n) if groups is None else np.asarray(groups)
    uniq, inverse = np.unique(groups, return_inverse=True)
    gpos = np.zeros(uniq.size, np.int64)
    np.maximum.at(gpos, inverse, _strat_key(labels))
    rng = np.random.default_rng([seed, 7])
    names = list(fractions)
    bounds = np.cumsum([fractions[k] for k in names])
    assign = np.empty(uniq.size, np.int64)
    for stratum in (0, 1):
        g = np.flatnonzero(gpos == stratum)
        g = g[rng.permutation(g.size)]
        cuts = np.round(bounds * g.size).astype(int)
        for i, (lo, hi) in enumerate(zip(np.r_[0, cuts[:-1]], cuts, strict=True)):
            assign[g[lo:hi]] = i
    per_image = assign[inverse]
    return {k: np.flatnonzero(per_image == i) for i, k in enumerate(names)}


def nested_subsample(indices: np.ndarray, labels: np.ndarray, size: float | int, seed: int) -> np.ndarray:
    """A stratified subset of ``indices``, nested across sizes for one seed.

    Each stratum's indices are put in one seeded random order; a subset takes a prefix of each
    order, its length proportional to the stratum's share. Larger sizes take longer prefixes, so
    smaller subsets lie inside larger ones.
    """
    strata = _strat_key(labels[indices])
    n = indices.size
    frac = size if isinstance(size, float) else size / n
    if isinstance(size, int) and size > n:
        raise ValueError(f"train_size={size} is more than the {n} images in this split")
    keep = []
    for s in (0, 1):
        members = indices[strata == s]
        order = members[np.random.default_rng([seed, 11, s]).permutation(members.size)]
        keep.append(order[: int(round(frac * members.size))])
    return np.sort(np.concatenate(keep))


def apply_regime(data: ImageSet, train_size: float | int | str | None, seed: int = 0) -> ImageSet:
    """Subsample train and val to ``train_size`` (see :func:`nested_subsample`); test unchanged.

    Raises:
        ValueError: the subset would hold no positive or no negative image; the message says
            how many positives the split has and the smallest size that keeps one.
    """
    size = parse_train_size(train_size)
    if size is None:
        return data
    splits = dict(data.splits)
    frac = size if isinstance(size, float) else size / max(1, splits["train"].size)
    for name in ("train", "val"):
        idx = splits.get(name)
        if idx is None or idx.size == 0:
            continue
        part = size if name == "train" else frac
        sub = nested_subsample(idx, data.labels if data.target is None else data.labels[:, data.target], part, seed)
        pos = int(_strat_key(data.y(sub)).sum())
        total_pos = int(_strat_key(data.y(idx)).sum())
        if pos == 0 or pos == sub.size:
            what = "positive" if pos == 0 else "negative"
            enough = min(1.0, 1.5 / max(min(total_pos, idx.size - total_pos), 1))
            raise ValueError(
                f"train_size={train_size} is too small: the {name} subset would hold {sub.size} images and no {what} one "
                f"(the full {name} split has {total_pos} positives among {idx.size} images). "
                f"Use a train_size of at least {enough:.3g} (or a count of at least {int(np.ceil(enough * data.splits['train'].size))})"
            )
        splits[name] = sub
    return data.with_splits(splits, train_size=str(train_size))
