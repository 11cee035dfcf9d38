"""A study's data, checked before anything is queued: every distinct data config it needs, loaded once.

The same check ``train`` makes before it records a run (:func:`medtl.data.preflight`): the path, the
target, empty splits or splits with one class only, too few positives for a training size. A study
over a folder with an empty test split or a 1% size without positives is refused as a whole, with
nothing recorded.
"""

from __future__ import annotations

from collections.abc import Callable

from medtl.config import DataConfig
from medtl.datasets import train_size_label
from medtl.study.config import StudyConfig


def data_configs(study: StudyConfig) -> list[DataConfig]:
    """The distinct DataConfigs of the study's runs (one per training size and seed; stage 2 adds none)."""
    out: dict[str, DataConfig] = {}
    for cfg in study.stage1():
        out.setdefault(cfg.data.to_json(), cfg.data)
    return list(out.values())


def check_data(study: StudyConfig, load: Callable[[DataConfig], object] | None = None):
    """Load every distinct data config of ``study`` (cached after the first load), as ``train`` does.

    Args:
        load: how a DataConfig is loaded (default :func:`medtl.data.load`; a page passes its cached loader).

    Returns:
        A :class:`medtl.data.Preflight`: the note on a positive class chosen from the data, and the data's
        warnings (saturated pixels; each said once for the whole study).

    Raises:
        ValueError, FileNotFoundError, NotADirectoryError: the first problem, in the words loading gives,
        prefixed with the training size it concerns when it is size-specific.
    """
    from medtl import data as D
    from medtl.data.adapters import check_source

    load = load or D.load
    first = study.base.data.replace(train_size=None, seed=study.seeds[0])
    note = check_source(first)  # a mistyped path or an ambiguous target: once, before any loading
    warnings = D.data_warnings(load(first))  # empty splits, one class only: the same for every size
    for cfg in data_configs(study):
        try:
            ds = load(cfg)
        except ValueError as e:
            raise ValueError(
                f"training size {train_size_label(cfg.train_size)} (seed {cfg.seed}) of study {study.name!r}: {e}"
            ) from None
        warnings += [w for w in D.data_warnings(ds) if w not in warnings]
    return D.Preflight(note, tuple(warnings))
