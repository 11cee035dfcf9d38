"""Frozen, validated configuration dataclasses with a JSON round trip.

A :class:`RunConfig` (data + model + training) is the reproducible artefact: every run folder
starts with its ``config.json`` and can be re-run from it. Types, choices (``Literal``) and value
rules (declared with each field) are checked on construction by :func:`medtl.fields.check_fields`;
errors name the field, the bad value and what is allowed. This module imports no torch and nothing from
:mod:`medtl.models`: names that live in the model registry (backbone, cut, weights, minimum input size) are
checked on the model side, by :func:`medtl.models.registry.check_run`, which the RunStore calls before
anything is recorded.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from medtl import datasets, initialisations
from medtl.datasets import Uncertainty, option_default, parse_spec, parse_train_size, train_size_label
from medtl.fields import Rule, bad, between, check, check_fields, one_of, setting
from medtl.metrics.operating import valid_rule
from medtl.strategies import STRATEGIES as _STRATEGY_RECORDS
from medtl.strategies import get_strategy

Head = Literal["gap", "flatten"]
Grayscale = Literal["replicate", "fold"]
Optimizer = Literal["adam", "adamw", "sgd"]
Schedule = Literal["cosine", "plateau", "constant"]
SelectBy = Literal["val_auprc", "val_auroc", "val_loss"]
Device = Literal["auto", "cpu", "cuda", "mps"]

# the choices the command line lists in its help (the others are read from their records)
HEADS = get_args(Head)
OPTIMIZERS = get_args(Optimizer)
SCHEDULES = get_args(Schedule)
DEVICES = get_args(Device)

T = TypeVar("T", bound="_Config")


class _Config:
    """JSON round trip and field checks shared by the config dataclasses."""

    def __post_init__(self):
        check_fields(self)

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


_INIT = Rule(initialisations.valid, initialisations.allowed())


@dataclass(frozen=True)
class ModelConfig(_Config):
    """What network is built and what of it is trained.

    Attributes:
        backbone: a registry name (``medtl.models.registry.BACKBONES``; checked by :meth:`check`).
        strategy: a record of ``medtl.strategies`` (finetune | truncate | freeze | transfusion | linear).
        cut: a published cut point of the backbone (``layer3``, ``layer3.2``, ``features.denseblock2``,
            ``cbr3``, ``full``).
        init: an initialisation spec (``medtl.initialisations``): ``random``, ``imagenet``,
            ``file:<path>`` or ``run:<id>``.
        weights: torchvision weights version for ``imagenet`` (``IMAGENET1K_V1`` or ``_V2``).
        head: ``gap`` (global average pooling + linear) or ``flatten`` (the TTL code's flattened map).
        dropout: before the linear layer; ``None`` = the family's default (0.1 for CBR, else 0).
        num_outputs: 1 logit for a binary task, L for multi-label.
        grayscale: ``replicate`` one channel to three, or ``fold`` the first conv's RGB filters.
        slim: transfusion only: layers above the cut at half width (as sun-umn/TTL's slim_resnet50).
    """

    backbone: str = "resnet18"
    strategy: str = setting("truncate", rule=one_of(lambda: _STRATEGY_RECORDS))
    cut: str = "layer2"
    init: str = setting(initialisations.RANDOM, rule=_INIT)
    weights: str = "IMAGENET1K_V1"
    head: Head = "gap"
    dropout: float | None = setting(None, rule=between(0, 1, hi_open=True))
    num_outputs: int = setting(1, rule=between(1))
    grayscale: Grayscale = "replicate"
    slim: bool = False

    def __post_init__(self):
        check_fields(self)
        strategy = get_strategy(self.strategy)
        strategy.check_cut(self.cut)
        # slim re-initialises the layers above the cut at half width: only a strategy that re-initialises them
        # (which backbones have a slim variant is their family's business: checked by ``check``)
        if self.slim and not strategy.reinit_above:
            raise ValueError(
                "slim=True is defined for strategy 'transfusion' (sun-umn/TTL's slim_resnet50). "
                f"Got strategy={self.strategy!r}, backbone={self.backbone!r}"
            )

    @property
    def kept_cut(self) -> str:
        """The deepest point of the backbone that stays in the network (what sets the minimum input size
        and the deepest Grad-CAM layer): the cut for a strategy that discards the top, else ``full``."""
        return get_strategy(self.strategy).kept_cut(self.cut)

    @property
    def label(self) -> str:
        return f"{self.backbone} {get_strategy(self.strategy).short(self.cut)}"


def _train_size_ok(v) -> bool:
    parse_train_size(v)  # raises with its own message (fraction, percentage or count)
    return True


@dataclass(frozen=True)
class DataConfig(_Config):
    """Which images, which target, what size and how much of the training data.

    Attributes:
        dataset: ``synthetic`` | ``medmnist:<file.npz or name[@size]>`` | ``chexpert:<root>`` |
            ``folder:<root>`` | ``csv:<file>`` (the kinds of ``medtl.datasets``).
        finding: the positive class / target label (SynthCXR: nodule, opacity, effusion,
            cardiomegaly or ``all`` for multi-label; CheXpert: an observation; folder: a class
            folder; MedMNIST: a label name or index; CSV: a label value). None = the dataset's
            default (a kind with a fixed set of targets stores it; others choose it from the data).
        image_size: side of the square images after resizing (aspect kept, padded).
        train_size: None (all), a fraction (0.05 or "5%") or a count (500) of the training split; stored
            in one form (``"5%"`` becomes 0.05, ``"100%"`` None).
        seed: seed of the data-poor subset (a sweep sets it with the training seed).
        split_seed: seed of generated train/val/test splits: fixed, so every run of a study shares
            one test split.
        n_images, prevalence, difficulty: SynthCXR's size, target prevalence and difficulty (0-1).
        uncertainty: CheXpert's policy for label -1: ones | zeros | ignore.
        frontal_only: CheXpert: keep frontal views only.
        skip_bad: skip unreadable images (counted in the data info) instead of failing.
        val_fraction, test_fraction: of generated splits.

    The kind-specific fields (n_images ... frontal_only) take their defaults, help and value rules
    from their kind's record in ``medtl.datasets``; they stay flat here so that every config.json
    keeps its keys. A config of one kind holds the other kinds' options at their defaults, so two
    configs that load the same images are equal.
    """

    dataset: str = "synthetic"
    finding: str | None = None
    image_size: int = setting(64, rule=between(28, 512), help="image side in pixels")
    train_size: float | int | str | None = setting(
        None, rule=Rule(_train_size_ok, "a fraction, percentage, count or 'all'")
    )
    seed: int = 0
    split_seed: int = 0
    n_images: int = option_default("n_images")
    prevalence: float = option_default("prevalence")
    difficulty: float = option_default("difficulty")
    uncertainty: Uncertainty = option_default("uncertainty")
    frontal_only: bool = option_default("frontal_only")
    skip_bad: bool = False
    val_fraction: float = setting(0.15, rule=between(0, 0.5, lo_open=True, hi_open=True))
    test_fraction: float = setting(0.15, rule=between(0, 0.5, lo_open=True, hi_open=True))

    def __post_init__(self):
        check_fields(self)
        kind, _ = parse_spec(self.dataset)
        # one form per experiment: the training size canonical ("10%" = 0.1), and the options of other
        # dataset kinds at their defaults (they do not change this kind's images)
        object.__setattr__(self, "train_size", parse_train_size(self.train_size))
        for name, (owner, option) in datasets.options().items():
            if owner is not kind:
                object.__setattr__(self, name, option.default)
        if self.finding is None and kind.findings is not None:  # a fixed set of targets: store its default
            object.__setattr__(self, "finding", kind.default_finding)
        kind.check_finding(self.finding)
        if kind.max_image_size is not None and self.image_size > kind.max_image_size:
            raise bad("image_size", self.image_size, f"at most {kind.max_image_size} px for {kind.title}")
        for option in kind.options:  # the kind's own rules (None passes them: an optional option left empty)
            check(option.name, getattr(self, option.name), option.annotation, option.rule)

    def with_dataset(self, dataset: str) -> DataConfig:
        """This config on another dataset: the same sizes and splits rule, and that dataset's own default
        target (``finding`` None: chosen from the data as :func:`medtl.data.load` does) and options.
        The same dataset keeps everything."""
        if dataset == self.dataset:
            return self
        return self.replace(dataset=dataset, finding=None)

    @property
    def kind(self) -> str:
        """The dataset kind's name (its record: ``medtl.datasets.get_kind(cfg.kind)``)."""
        return parse_spec(self.dataset)[0].name

    @property
    def source(self) -> str:
        """What follows ``kind:`` (a path or a MedMNIST name); empty for SynthCXR."""
        return parse_spec(self.dataset)[1]

    def test_split_key(self) -> str:
        """Equal for configs that share images and test split (the data-poor subset and its seed aside)."""
        d = {k: v for k, v in self.to_dict().items() if k not in ("train_size", "seed")}
        return json.dumps(d, sort_keys=True)

    @property
    def label(self) -> str:
        name = "synthetic" if self.kind == "synthetic" else f"{self.kind}:{Path(self.source).name or self.source}"
        return f"{name}/{self.finding}" if self.finding else name


_RULE_FORMS = "a rule: sensitivity:S or specificity:S (S in (0, 1]), youden or threshold:T (T in [0, 1])"


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
        operating_point: how the run's threshold is chosen on validation for ``metrics.json``'s ``test.op``
            (``sensitivity:0.9``, ``specificity:0.95``, ``youden`` or ``threshold:0.5``,
            :mod:`medtl.metrics.operating`); pages, studies and ``runs show`` can read another from the
            predictions.
        compile: run the training step through ``torch.compile`` (inductor). The first batch pays a
            one-off compilation (20-70 s on a 2-core CPU), then steps are 0.98-1.17x as fast there
            (ResNet18/50, 28-128 px, benchmarks/bench_compile.py); meant for long runs on a GPU. Evaluation stays eager.
    """

    epochs: int = setting(5, rule=between(1))
    batch_size: int = setting(32, rule=between(1))
    lr: float = setting(1e-3, rule=between(0, 1, lo_open=True))
    optimizer: Optimizer = "adamw"
    weight_decay: float = setting(1e-4, rule=between(0, 1, hi_open=True))
    schedule: Schedule = "cosine"
    warmup_epochs: int = setting(0, rule=between(0))
    backbone_lr_mult: float = setting(1.0, rule=between(0, 10, lo_open=True))
    select_by: SelectBy = "val_auprc"
    patience: int = setting(5, rule=between(0))
    augment: bool = True
    seed: int = 0
    device: Device = "auto"
    threads: int | None = setting(None, rule=between(1))
    bootstrap: int = setting(1000, rule=between(1))
    compile: bool = False
    operating_point: str = setting("sensitivity:0.9", rule=Rule(valid_rule, _RULE_FORMS))


# Fields ("part.name") that do not change the trained model: where and how fast a run executes, how
# many resamples its test intervals take and where its threshold is read. No key covers them.
OUTSIDE_KEY = ("train.device", "train.threads", "train.compile", "train.bootstrap", "train.operating_point")
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

    @property
    def name(self) -> str:
        """A short human-readable name, e.g. ``synthetic/opacity · resnet50 truncate@layer3 · imagenet · 5% · seed 0``."""
        size = train_size_label(self.data.train_size)
        return f"{self.data.label} · {self.model.label} · {self.model.init} · {size} · seed {self.train.seed}"

    def key(self) -> str:
        """A hash of the run: its canonical config (see :class:`DataConfig`) except the settings that do
        not change the trained model (:data:`OUTSIDE_KEY`: device, threads, compile, bootstrap), so a
        sweep re-run on another machine, with ``--compile`` or another bootstrap count skips what is
        already done, and ``--train-size 10%`` finds a run recorded with ``0.1``."""
        return _digest(self.to_dict(), OUTSIDE_KEY)

    def experiment_key(self) -> str:
        """A hash of the experiment: the run's key without its seeds (``train.seed``, ``data.seed``).
        Runs with equal experiment keys are repeats of one experiment: they are grouped over seeds."""
        return _digest(self.to_dict(), OUTSIDE_KEY + SEED_FIELDS)

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


__all__ = ["DataConfig", "ModelConfig", "RunConfig", "TrainConfig", "load_json"]
