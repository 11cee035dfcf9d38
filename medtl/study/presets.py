"""Ready-made studies as records: one :class:`Preset` per row of :data:`PRESETS`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.study.config import StudyConfig


@dataclass(frozen=True)
class Preset:
    """A study by keywords: the base run's data and training settings, then the axes.

    Attributes:
        name: the preset's (and the study's default) name.
        help: one line for the form and the CLI.
        data, train: keyword arguments of the base run's DataConfig and TrainConfig.
        backbones ... criterion: the StudyConfig axes (``cuts``: blocks | layers | search | names).
    """

    name: str
    help: str
    data: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    backbones: tuple[str, ...] = ("resnet18",)
    strategies: tuple[str, ...] = ("truncate",)
    cuts: str | tuple[str, ...] = "blocks"
    inits: tuple[str, ...] = ("random",)
    train_sizes: tuple[float | int | None, ...] = (None,)
    seeds: tuple[int, ...] = (0,)
    criterion: str = "val_auprc"

    def study(self) -> StudyConfig:
        base = RunConfig(DataConfig(**self.data), ModelConfig(backbone=self.backbones[0]), TrainConfig(**self.train))
        return StudyConfig(
            self.name,
            base,
            self.backbones,
            self.strategies,
            self.cuts,
            self.inits,
            self.train_sizes,
            self.seeds,
            self.criterion,
        )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # the whole pipeline in about a minute on a 2-core CPU (two cuts and full fine-tuning, one seed, 32 px):
        # a first look at the pages and the report; too small to learn the nodules (results near chance)
        Preset(
            "quick",
            "3 tiny runs in about a minute: a tour of the pages and the report (too small to learn)",
            data=dict(finding="nodule", image_size=32, n_images=400, difficulty=0.1),
            train=dict(epochs=2, batch_size=32, bootstrap=200, patience=0),
            cuts=("layer1", "layer2"),
        ),
        # sized so the whole study (20 runs) finishes in under 6 minutes on a 2-core CPU (1000 images took
        # ~860 s of CPU time: 800 cut it by a fifth); large, high-contrast nodules (difficulty 0.1) so that
        # 4 epochs on 560 images learn (600 images x 3 epochs at difficulty 0.3: chance)
        Preset(
            "demo",
            "20 runs, minutes on a CPU: every block of ResNet18 and full fine-tuning, all and 10% of the data, 2 seeds",
            data=dict(finding="nodule", image_size=64, n_images=800, difficulty=0.1),
            train=dict(epochs=4, batch_size=32, bootstrap=500, patience=0),
            train_sizes=(None, 0.1),
            seeds=(0, 1),
        ),
        Preset(
            "paper",
            "the article's ResNet50 grid: three strategies, the two-stage search, ImageNet and random, 3 sizes (a GPU)",
            data=dict(finding="nodule", image_size=128, n_images=3000),
            train=dict(epochs=20, patience=5),
            backbones=("resnet50",),
            strategies=("truncate", "freeze", "transfusion"),
            cuts="search",
            inits=("imagenet", "random"),
            train_sizes=(0.05, 0.1, None),
            seeds=(0, 1, 2),
        ),
        # 128 px: the 7x7 CBR nets need at least 91 px at full depth
        Preset(
            "shallow-vs-deep",
            "small CBR nets against ResNet50 and DenseNet121, full fine-tuning, ImageNet and random (a GPU)",
            data=dict(finding="nodule", image_size=128, n_images=3000),
            train=dict(epochs=10),
            backbones=("cbr_tiny", "cbr_small", "cbr_large_w", "resnet50", "densenet121"),
            strategies=("finetune",),
            inits=("imagenet", "random"),
            train_sizes=(0.1, None),
            seeds=(0, 1, 2),
        ),
    )
}


def preset(name: str) -> StudyConfig:
    """The study of preset ``name`` (one of :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}. Presets: {', '.join(PRESETS)}")
    return PRESETS[name].study()
