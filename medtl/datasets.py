"""Dataset kinds as records: options, defaults, help, spec parsing and the loader of each kind.

One :class:`DatasetKind` per kind (``synthetic``, ``medmnist``, ``chexpert``, ``folder``, ``csv``).
Validation (``medtl.config``), the command line, the Train form and ``python -m medtl data`` read
these records; ``medtl.data.load`` calls the record's loader. Adding a dataset kind = one record
here + its loader function. This module imports no torch (``medtl.config`` uses it).
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from medtl.fields import Rule, between

# SynthCXR's findings, in label order (the generator draws them, medtl.data.synth)
SYNTH_FINDINGS = ("nodule", "opacity", "effusion", "cardiomegaly")
# class names taken as the negative class of a two-class set (compared after normalising case)
NEGATIVE_NAMES = ("normal", "negative", "healthy", "no_finding", "no finding", "0")
# CheXpert's policies for label -1 (uncertain)
Uncertainty = Literal["ones", "zeros", "ignore"]


@dataclass(frozen=True)
class Option:
    """A setting that belongs to one dataset kind; stored as the ``DataConfig`` field ``name``.

    The form builds its widget from this record alone; the DataConfig field (which keeps every
    config.json's keys) has the same type and default, as a test checks for every option.

    Attributes:
        name: the DataConfig field (and the CLI flag ``--name``, the form widget key).
        default: the value when not given.
        label: the form label.
        help: one line for the CLI and the form.
        rule: the allowed values beyond the field's type (checked when the kind is used).
        step: the form's step for numbers.
        switch: for a bool, the CLI switch that sets the non-default value when it is not ``--name``
            (``all_views`` sets ``frontal_only`` to False).
        type: the value's type as annotated (``bool``, ``int``, ``float``, ``str``, a ``Literal``, any of
            them ``| None``); None = the default's type. Text (a path too) is stored as ``str``.
        hint: what to type in an empty text box (a path: ``<folder>``).
    """

    name: str
    default: Any
    label: str
    help: str
    rule: Rule | None = None
    step: float | None = None
    switch: str | None = None
    type: Any = None
    hint: str = ""

    @property
    def annotation(self) -> Any:
        """The value's type: :attr:`type`, else the default's."""
        return type(self.default) if self.type is None else self.type


@dataclass(frozen=True)
class Target:
    """One target a dataset offers: ``name`` is the value of ``DataConfig.finding``.

    Attributes:
        name: the finding, class or label (``all``: every label at once).
        label: how a form shows it (a class name where the data has one).
        n_pos: images with this target positive (for SynthCXR: expected, from the prevalence); None for ``all``.
        n: images in all.
    """

    name: str
    label: str
    n_pos: int | None
    n: int


@dataclass(frozen=True)
class DatasetKind:
    """What a dataset kind is, which settings it has and how it loads.

    Attributes:
        name: the prefix of ``DataConfig.dataset`` (``folder`` in ``folder:/data/xr``).
        title: the dataset's name in messages (``SynthCXR``).
        label: the form's label.
        description: one sentence for forms and help.
        source: what follows ``name:`` (``"CheXpert folder"``); None = the kind takes no source.
        source_hint: the syntax of the source, for help (``<file.npz|name@size>``).
        target_help: what ``finding`` means for this kind, and its default.
        findings: a closed set of targets (SynthCXR), else None (any label of the data).
        default_finding: the target when none is given; None = chosen from the data.
        options: the kind's own settings.
        max_image_size: the largest image side the kind can produce (None = any).
        loader: ``"module:function"`` taking ``(cfg, progress)`` and returning ``Arrays``, a
            ``Manifest`` (decoded and cached by ``medtl.data``) or ``(Arrays, mask_fn)``.
        preflight: ``"module:function"`` taking ``cfg``: a cheap check before a run is recorded (the
            source exists, a target can be chosen), returning a note on the chosen target or "".
            Empty: only that the source path exists.
        targets: ``"module:function"`` taking ``cfg`` and returning ``(targets, default)``: every
            :class:`Target` the data offers with its counts, and the name chosen when none is given
            (None: the data does not single one out). Read cheaply (labels, file names), for forms.
    """

    name: str
    title: str
    label: str
    description: str
    source: str | None
    source_hint: str
    target_help: str
    loader: str
    findings: tuple[str, ...] | None = None
    default_finding: str | None = None
    options: tuple[Option, ...] = ()
    max_image_size: int | None = None
    preflight: str = ""
    targets: str = ""

    @property
    def spec(self) -> str:
        """The dataset syntax, e.g. ``folder:<root>``."""
        return self.name if self.source is None else f"{self.name}:{self.source_hint}"

    def load_function(self) -> Callable:
        """The loader, imported on first use (it may need torch)."""
        return self.function(self.loader)

    @staticmethod
    def function(ref: str) -> Callable:
        """The function ``"module:function"`` names, imported when first needed."""
        module, _, fn = ref.partition(":")
        return getattr(importlib.import_module(module), fn)

    def check_finding(self, finding: str | None) -> None:
        """Raise ValueError when ``finding`` is not a target of a kind with a closed set of targets."""
        if self.findings is not None and finding not in (*self.findings, "all", None):
            raise ValueError(
                f"finding must be one of {', '.join(self.findings)} or 'all' for {self.title}. Got {finding!r}"
            )


KINDS: dict[str, DatasetKind] = {
    k.name: k
    for k in (
        DatasetKind(
            "synthetic",
            "SynthCXR",
            "SynthCXR (embedded, offline)",
            "procedurally generated chest-radiograph-like images with findings of known location",
            None,
            "",
            "a finding (" + ", ".join(SYNTH_FINDINGS) + ") or 'all' for one multi-label model (default: nodule)",
            "medtl.data:synthetic_arrays",
            findings=SYNTH_FINDINGS,
            default_finding="nodule",
            max_image_size=256,
            targets="medtl.data.adapters:synthetic_targets",
            options=(
                Option("n_images", 3000, "Images", "SynthCXR: number of images", between(20), step=500),
                Option(
                    "prevalence",
                    0.25,
                    "Prevalence",
                    "SynthCXR: share of images with the target finding",
                    between(0, 1, lo_open=True, hi_open=True),
                    step=0.05,
                ),
                Option(
                    "difficulty",
                    0.3,
                    "Difficulty",
                    "SynthCXR: 0 (large, clear findings) to 1 (small, faint)",
                    between(0, 1),
                    step=0.05,
                ),
            ),
        ),
        DatasetKind(
            "medmnist",
            "MedMNIST",
            "MedMNIST .npz file",
            "MedMNIST arrays with their official splits (PneumoniaMNIST, ChestMNIST, ...)",
            "MedMNIST file",
            "<file.npz|name@size>",
            "a label name or class index (default: class 1 of a binary file, else label 0)",
            "medtl.data.adapters:medmnist",
            preflight="medtl.data.adapters:medmnist_preflight",
            targets="medtl.data.adapters:medmnist_targets",
        ),
        DatasetKind(
            "chexpert",
            "CheXpert",
            "CheXpert folder",
            "CheXpert (train.csv, valid.csv and images); the official validation set is the test split",
            "CheXpert folder",
            "<root>",
            "a CheXpert observation (default: Pleural Effusion)",
            "medtl.data.adapters:chexpert",
            default_finding="Pleural Effusion",
            targets="medtl.data.adapters:chexpert_targets",
            options=(
                Option(
                    "uncertainty",
                    "ones",
                    "Uncertain labels (-1)",
                    "CheXpert: label -1 as ones | zeros | ignore",
                    type=Uncertainty,
                ),
                Option(
                    "frontal_only",
                    True,
                    "Frontal views only",
                    "CheXpert: frontal views only, unless --all-views (lateral views too)",
                    switch="all_views",
                ),
            ),
        ),
        DatasetKind(
            "folder",
            "image folder",
            "Image folder (one sub-folder per class)",
            "root/<class>/* or root/<split>/<class>/*",
            "Image folder",
            "<root>",
            "the positive class folder (default: with two classes, the one that is not normal/negative/healthy)",
            "medtl.data.adapters:folder",
            preflight="medtl.data.adapters:folder_preflight",
            targets="medtl.data.adapters:folder_targets",
        ),
        DatasetKind(
            "csv",
            "CSV manifest",
            "CSV manifest (path,label)",
            "a CSV with path,label and optional patient_id, split; paths relative to the CSV",
            "CSV manifest",
            "<file>",
            "the positive label value (default: 1, or with two values the one that is not normal/negative)",
            "medtl.data.adapters:csv_manifest",
            preflight="medtl.data.adapters:csv_preflight",
            targets="medtl.data.adapters:csv_targets",
        ),
    )
}


def get_kind(name: str) -> DatasetKind:
    """The record for ``name``; unknown names raise with the list of valid ones."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown dataset kind {name!r}. Valid kinds: {', '.join(KINDS)}") from None


def parse_spec(spec: str) -> tuple[DatasetKind, str]:
    """``"folder:/data/xr"`` -> (the folder record, ``"/data/xr"``), with messages naming the value."""
    name, sep, source = str(spec).partition(":")
    if name not in KINDS:
        with_source = ", ".join(f"'{k.name}:'" for k in KINDS.values() if k.source)
        plain = ", ".join(f"'{k.name}'" for k in KINDS.values() if not k.source)
        raise ValueError(f"dataset must be {plain} or one of {with_source} followed by a path. Got {spec!r}")
    kind = KINDS[name]
    if kind.source and not source.strip():
        raise ValueError(f"dataset {spec!r} needs a path after '{name}:' ({kind.source} {kind.source_hint})")
    if not kind.source and sep:
        raise ValueError(f"dataset {name!r} takes no path. Got {spec!r}")
    return kind, source


def options() -> dict[str, tuple[DatasetKind, Option]]:
    """Every kind's options by field name."""
    return {o.name: (k, o) for k in KINDS.values() for o in k.options}


def option_default(name: str) -> Any:
    """The default of the kind option ``name`` (the DataConfig field default reads it from here)."""
    return options()[name][1].default


def _norm(s: str) -> str:
    return re.sub(r"[\s_-]+", " ", str(s).strip().lower())


def pick_positive(classes: Iterable[str], where: str) -> tuple[str, str]:
    """The positive class of a two-class set when none is chosen, and a note saying which.

    The positive class is the one that is not a common negative name (``NEGATIVE_NAMES``); a set
    with more classes, or where that does not single one out, asks for a choice (ValueError).
    """
    classes = list(classes)
    negatives = {_norm(n) for n in NEGATIVE_NAMES}
    if len(classes) == 2:
        neg = [c for c in classes if _norm(c) in negatives]
        if len(neg) == 1:
            pos = next(c for c in classes if c != neg[0])
            return (
                pos,
                f"positive class {pos!r} ({neg[0]!r} is the negative class; set the target label to choose another)",
            )
    raise ValueError(f"Choose the positive class (the target label) of {where}: one of {', '.join(map(str, classes))}")


ALL_SIZES = ("all", "none", "100%")  # spellings of "the whole training split"


def parse_train_size(value: float | int | str | None) -> float | int | None:
    """A training-set size in its one canonical form: ``None`` = all, a float in (0, 1) = a fraction,
    an int > 1 = a count.

    ``"10%"``, ``"0.1"`` and ``0.1`` are the same fraction (rounded to 10 significant digits, so that a
    percentage and its decimal agree); ``None``, ``1``, ``1.0``, ``"100%"`` and ``"all"`` mean all.
    """
    if value is None:
        return None
    given = value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ALL_SIZES:
            return None
        try:
            value = float(v[:-1]) / 100 if v.endswith("%") else int(v) if v.isdigit() else float(v)
        except ValueError:
            raise ValueError(
                f"train_size must be a fraction like 0.05, a percentage like 5%, a count like 500 or 'all'. "
                f"Got {given!r}"
            ) from None
        if v.endswith("%") and value > 1:
            raise ValueError(f"train_size as a percentage must be at most 100%. Got {given!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"train_size must be a fraction, a percentage, a count or 'all'. Got {given!r}")
    if value <= 0:
        raise ValueError(f"train_size must be positive. Got {given!r}")
    if isinstance(value, float) and value < 1:
        return float(f"{value:.10g}")
    if value == 1:
        return None
    if float(value) != int(value):
        raise ValueError(f"train_size above 1 is a count and must be a whole number. Got {given!r}")
    return int(value)


def _table_size(value: float | int | str | None) -> float | int | None:
    """:func:`parse_train_size`, NaN (a runs table's missing cell: the size was None) read as all."""
    return None if isinstance(value, float) and math.isnan(value) else parse_train_size(value)


def train_size_label(value: float | int | str | None) -> str:
    """A training-set size for people: ``100%`` (all), ``10%``, ``12.5%`` (fractions), ``500`` (a count).

    The one formatter of run names, legends, tables and forms (NaN, a runs table's missing cell, is all).
    """
    size = _table_size(value)
    if size is None:
        return "100%"
    if isinstance(size, float):
        return f"{size * 100:.3g}%"
    return str(size)


def train_size_words(value: float | int | str | None) -> str:
    """A training-set size in a sentence: ``all the training data``, ``10% of the training data`` or
    ``500 training images`` (of a value or its :func:`train_size_label`; NaN is all)."""
    size = _table_size(value)
    if size is None:
        return "all the training data"
    label = train_size_label(size)
    return f"{label} of the training data" if isinstance(size, float) else f"{label} training images"
