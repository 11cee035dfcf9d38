"""Frozen, validated configuration dataclasses with a JSON round trip.

A :class:`RunConfig` (data + model + training) is the reproducible artefact: every run folder
starts with its ``config.json`` and can be re-run from it. Validation happens on construction and
errors name the field, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

STRATEGIES = ("finetune", "truncate", "freeze", "transfusion", "linear")
HEADS = ("gap", "flatten")
GRAYSCALE = ("replicate", "fold")
FINDINGS = ("nodule", "opacity", "effusion", "cardiomegaly")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "plateau", "constant")
SELECT_BY = ("val_auprc", "val_auroc", "val_loss")

T = TypeVar("T", bound="_Config")


def _bad(field_name: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"{field_name} must be {allowed}. Got {value!r}")


class _Config:
    """JSON round trip shared by the config dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls: type[T], d: dict[str, Any]) -> T:
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__} expects a JSON object. Got {type(d).__name__}")
        names = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} field(s) {unknown}. Valid fields: {sorted(names)}")
        kwargs = {}
        for k, v in d.items():
            sub = _NESTED.get((cls.__name__, k))
            kwargs[k] = sub.from_dict(v) if sub and isinstance(v, dict) else v
        return cls(**kwargs)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ModelConfig(_Config):
    """What network is built and what of it is trained.

    Attributes:
        backbone: a registry name (``medtl.models.registry.BACKBONES``).
        strategy: finetune | truncate | freeze | transfusion | linear (see ``medtl.models.transfer``).
        cut: a published cut point of the backbone (``layer3``, ``layer3.2``, ``features.denseblock2``,
            ``cbr3``, ``full``).
        init: ``random``, ``imagenet``, ``file:<path>`` or ``run:<id>``.
        weights: torchvision weights version for ``imagenet`` (``IMAGENET1K_V1`` or ``_V2``).
        head: ``gap`` (global average pooling + linear) or ``flatten`` (the TTL code's flattened map).
        dropout: before the linear layer; ``None`` = the family's default (0.1 for CBR, else 0).
        num_outputs: 1 logit for a binary task, L for multi-label.
        grayscale: ``replicate`` one channel to three, or ``fold`` the first conv's RGB filters.
        slim: transfusion only: layers above the cut at half width (as sun-umn/TTL's slim_resnet50).
    """

    backbone: str = "resnet18"
    strategy: str = "truncate"
    cut: str = "layer2"
    init: str = "random"
    weights: str = "IMAGENET1K_V1"
    head: str = "gap"
    dropout: float | None = None
    num_outputs: int = 1
    grayscale: str = "replicate"
    slim: bool = False

    def __post_init__(self):
        from medtl.models.registry import get_cut, get_spec

        spec = get_spec(self.backbone)
        if self.strategy not in STRATEGIES:
            raise _bad("strategy", self.strategy, f"one of {', '.join(STRATEGIES)}")
        get_cut(self.backbone, self.cut)
        if self.strategy == "finetune" and self.cut != "full":
            raise ValueError(
                f"strategy 'finetune' trains the whole network, so cut must be 'full'. Got cut={self.cut!r}; "
                "use strategy 'truncate' to cut the network"
            )
        if self.strategy in ("freeze", "transfusion") and self.cut == "full":
            raise ValueError(f"strategy {self.strategy!r} needs a cut below 'full' (what is frozen / kept pretrained)")
        if not (self.init in ("random", "imagenet") or self.init.startswith(("file:", "run:"))):
            raise _bad("init", self.init, "'random', 'imagenet', 'file:<path>' or 'run:<id>'")
        if self.init == "imagenet" and spec.weights is None:
            raise ValueError(f"init 'imagenet' is not available for {self.backbone}: it has no ImageNet weights")
        if self.head not in HEADS:
            raise _bad("head", self.head, f"one of {', '.join(HEADS)}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise _bad("dropout", self.dropout, "in [0, 1)")
        if not isinstance(self.num_outputs, int) or self.num_outputs < 1:
            raise _bad("num_outputs", self.num_outputs, "a positive integer")
        if self.grayscale not in GRAYSCALE:
            raise _bad("grayscale", self.grayscale, f"one of {', '.join(GRAYSCALE)}")
        if self.slim and (self.strategy != "transfusion" or self.backbone != "resnet50"):
            raise ValueError(
                "slim=True is defined for strategy 'transfusion' on resnet50 (sun-umn/TTL's slim_resnet50)"
            )

    @property
    def label(self) -> str:
        where = "" if self.strategy == "finetune" else f"@{self.cut}"
        return f"{self.backbone} {self.strategy}{where}"


DATASET_KINDS = ("synthetic", "medmnist", "chexpert", "folder", "csv")
UNCERTAINTY = ("ones", "zeros", "ignore")


@dataclass(frozen=True)
class DataConfig(_Config):
    """Which images, which target, what size and how much of the training data.

    Attributes:
        dataset: ``synthetic`` | ``medmnist:<file.npz or name[@size]>`` | ``chexpert:<root>`` |
            ``folder:<root>`` | ``csv:<file>``.
        finding: the positive class / target label (SynthCXR: nodule, opacity, effusion,
            cardiomegaly or ``all`` for multi-label; CheXpert: an observation; folder: a class
            folder; MedMNIST: a label name or index; CSV: a label value). None = the dataset's default.
        image_size: side of the square images after resizing (aspect kept, padded).
        train_size: None (all), a fraction (0.05 or "5%") or a count (500) of the training split.
        seed: seed of the data-poor subset (a sweep sets it with the training seed).
        split_seed: seed of generated train/val/test splits: fixed, so every run of a study shares
            one test split.
        n_images, prevalence, difficulty: SynthCXR's size, target prevalence and difficulty (0-1).
        uncertainty: CheXpert's policy for label -1: ones | zeros | ignore.
        frontal_only: CheXpert: keep frontal views only.
        skip_bad: skip unreadable images (counted in the data info) instead of failing.
        val_fraction, test_fraction: of generated splits.
    """

    dataset: str = "synthetic"
    finding: str | None = "nodule"
    image_size: int = 64
    train_size: float | int | str | None = None
    seed: int = 0
    split_seed: int = 0
    n_images: int = 3000
    prevalence: float = 0.25
    difficulty: float = 0.3
    uncertainty: str = "ones"
    frontal_only: bool = True
    skip_bad: bool = False
    val_fraction: float = 0.15
    test_fraction: float = 0.15

    def __post_init__(self):
        from medtl.data.imageset import parse_train_size

        kind = self.kind
        if kind not in DATASET_KINDS:
            raise _bad(
                "dataset",
                self.dataset,
                "'synthetic' or one of 'medmnist:', 'chexpert:', 'folder:', 'csv:' followed by a path",
            )
        if kind != "synthetic" and not self.source:
            raise ValueError(f"dataset {self.dataset!r} needs a path after '{kind}:'")
        if not isinstance(self.image_size, int) or not 28 <= self.image_size <= 512:
            raise _bad("image_size", self.image_size, "a whole number of pixels from 28 to 512")
        parse_train_size(self.train_size)
        if kind == "synthetic":
            from medtl.data.synth import FINDINGS, MAX_SIZE

            if self.finding not in (*FINDINGS, "all", None):
                raise _bad("finding", self.finding, f"one of {', '.join(FINDINGS)} or 'all' for SynthCXR")
            if self.image_size > MAX_SIZE:
                raise _bad("image_size", self.image_size, f"at most {MAX_SIZE} px for SynthCXR")
            if not isinstance(self.n_images, int) or self.n_images < 20:
                raise _bad("n_images", self.n_images, "a whole number of at least 20")
            if not 0 < self.prevalence < 1:
                raise _bad("prevalence", self.prevalence, "in (0, 1)")
            if not 0 <= self.difficulty <= 1:
                raise _bad("difficulty", self.difficulty, "in [0, 1]")
        if self.uncertainty not in UNCERTAINTY:
            raise _bad("uncertainty", self.uncertainty, f"one of {', '.join(UNCERTAINTY)}")
        for name in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 0.5:
                raise _bad(name, getattr(self, name), "in (0, 0.5)")

    @property
    def kind(self) -> str:
        return self.dataset.split(":", 1)[0]

    @property
    def source(self) -> str:
        return self.dataset.split(":", 1)[1] if ":" in self.dataset else ""

    def test_split_key(self) -> str:
        """Equal for configs that share images and test split (the data-poor subset and its seed aside)."""
        d = {k: v for k, v in self.to_dict().items() if k not in ("train_size", "seed")}
        return json.dumps(d, sort_keys=True)

    @property
    def label(self) -> str:
        name = "synthetic" if self.kind == "synthetic" else f"{self.kind}:{Path(self.source).name or self.source}"
        return f"{name}/{self.finding}" if self.finding else name


DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class TrainConfig(_Config):
    """How the network is trained. Defaults train well on a CPU at 64 px in minutes.

    Attributes:
        schedule: ``cosine`` (with ``warmup_epochs`` of linear warm-up), ``plateau`` (reduce the
            rate 10x when validation loss stalls, as sun-umn/TTL) or ``constant``.
        backbone_lr_mult: the backbone's learning rate relative to the head's (e.g. 0.1 for LWFT).
        select_by: the checkpoint kept: best ``val_auprc`` (default), ``val_auroc`` or lowest ``val_loss``.
        patience: stop after this many epochs without improvement (0 = never).
        device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``mps``.
        threads: CPU threads for torch (None = torch's default, the core count).
        bootstrap: resamples for the test-metric confidence intervals.
        compile: run the training step through ``torch.compile`` (inductor). The first batch pays a
            one-off compilation (20-70 s on a 2-core CPU), then steps are 0.98-1.17x as fast there
            (ResNet18/50, 28-128 px, benchmarks/bench_compile.py); meant for long runs on a GPU. Evaluation stays eager.
    """

    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: int = 0
    backbone_lr_mult: float = 1.0
    select_by: str = "val_auprc"
    patience: int = 5
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    bootstrap: int = 1000
    compile: bool = False

    def __post_init__(self):
        positive_int = {"epochs": self.epochs, "batch_size": self.batch_size, "bootstrap": self.bootstrap}
        for name, v in positive_int.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise _bad(name, v, "a whole number of at least 1")
        if not isinstance(self.lr, int | float) or not 0 < self.lr <= 1:
            raise _bad("lr", self.lr, "a learning rate in (0, 1]")
        if self.optimizer not in OPTIMIZERS:
            raise _bad("optimizer", self.optimizer, f"one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise _bad("schedule", self.schedule, f"one of {', '.join(SCHEDULES)}")
        if self.select_by not in SELECT_BY:
            raise _bad("select_by", self.select_by, f"one of {', '.join(SELECT_BY)}")
        if not 0 <= self.weight_decay < 1:
            raise _bad("weight_decay", self.weight_decay, "in [0, 1)")
        if not 0 < self.backbone_lr_mult <= 10:
            raise _bad("backbone_lr_mult", self.backbone_lr_mult, "in (0, 10]")
        if not isinstance(self.patience, int) or self.patience < 0:
            raise _bad("patience", self.patience, "0 (off) or a positive whole number")
        if not isinstance(self.warmup_epochs, int) or self.warmup_epochs < 0:
            raise _bad("warmup_epochs", self.warmup_epochs, "a whole number >= 0")
        if self.device not in DEVICES:
            raise _bad("device", self.device, f"one of {', '.join(DEVICES)}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise _bad("threads", self.threads, "None or a positive whole number")
        if not isinstance(self.compile, bool):
            raise _bad("compile", self.compile, "true or false")


# Fields ("part.name") that say where and how fast a run executes, not what the experiment is
EXECUTION_FIELDS = ("train.device", "train.threads", "train.compile")
# Fields that make one repeat of an experiment differ from another
SEED_FIELDS = ("train.seed", "data.seed")


def _digest(d: dict[str, Any], leave_out: tuple[str, ...]) -> str:
    import hashlib

    d = {part: {k: v for k, v in sub.items() if f"{part}.{k}" not in leave_out} for part, sub in d.items()}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunConfig(_Config):
    """Everything a run needs; its JSON is ``config.json`` in the run folder."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        from medtl.models.registry import min_input_size

        for name, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
            if not isinstance(getattr(self, name), cls):
                raise _bad(name, getattr(self, name), f"a {cls.__name__}")
        cut = self.model.cut if self.model.strategy in ("truncate", "linear") else "full"
        minimum = min_input_size(self.model.backbone, cut)
        if self.data.image_size < minimum:
            raise ValueError(
                f"image_size {self.data.image_size} is too small for {self.model.backbone} cut at {cut}: "
                f"it needs at least {minimum} px. Raise image_size or choose a shallower cut"
            )

    @property
    def name(self) -> str:
        """A short human-readable name, e.g. ``synthetic/opacity · resnet50 truncate@layer3 · imagenet · 5% · seed 0``."""
        size = self.data.train_size
        size = "100%" if size is None else (f"{float(size):.0%}" if isinstance(size, float) else str(size))
        return f"{self.data.label} · {self.model.label} · {self.model.init} · {size} · seed {self.train.seed}"

    def key(self) -> str:
        """A hash of the run: every setting except where and how fast it runs
        (``train.device``, ``train.threads``, ``train.compile``), so a sweep re-run on another
        machine or with ``--compile`` skips what is already done."""
        return _digest(self.to_dict(), EXECUTION_FIELDS)

    def experiment_key(self) -> str:
        """A hash of the experiment: the run's key without its seeds (``train.seed``, ``data.seed``).
        Runs with equal experiment keys are repeats of one experiment: they are grouped over seeds."""
        return _digest(self.to_dict(), EXECUTION_FIELDS + SEED_FIELDS)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(load_json(path))


_NESTED: dict[tuple[str, str], type] = {
    ("RunConfig", "data"): DataConfig,
    ("RunConfig", "model"): ModelConfig,
    ("RunConfig", "train"): TrainConfig,
}


def load_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON file with errors that name the file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"Config file {p} does not exist")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not valid JSON: {e}") from None


__all__ = ["DataConfig", "ModelConfig", "RunConfig", "TrainConfig", "STRATEGIES", "load_json"]
