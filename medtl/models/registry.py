"""Backbone registry: a backbone name -> its family, builder and ImageNet weights enum.

What a backbone looks like inside (stages, published cut points, truncation, minimum input
size, Grad-CAM layer) is its family's knowledge (:mod:`medtl.models.families`); this module maps
names to families and answers by name. Add a backbone of a known family = one line in
:data:`BACKBONES`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torchvision
from torch import nn

from medtl import initialisations
from medtl.config import ModelConfig, RunConfig
from medtl.models.families.base import CutPoint, Family
from medtl.models.families.cbr import CBR, CBR_CONFIGS, CBRNet
from medtl.models.families.convnext import CONVNEXT
from medtl.models.families.densenet import DENSENET
from medtl.models.families.efficientnet import EFFICIENTNET
from medtl.models.families.resnet import RESNET
from medtl.models.families.vit import VIT


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    family: Family
    builder: Callable[[], nn.Module]
    weights: str | None  # torchvision weights enum name, None when there are no pretrained weights
    description: str


def _tv(name: str, family: Family, weights: str, description: str) -> BackboneSpec:
    """A torchvision model, built with ``weights=None`` (weights load through :mod:`.weights`)."""
    return BackboneSpec(name, family, lambda: torchvision.models.get_model(name, weights=None), weights, description)


def _cbr(name: str) -> BackboneSpec:
    kernel, widths = CBR_CONFIGS[name]
    return BackboneSpec(
        name, CBR, lambda: CBRNet(name), None, f"Transfusion {name} ({kernel}x{kernel} convs, widths {widths})"
    )


BACKBONES: dict[str, BackboneSpec] = {
    s.name: s
    for s in (
        _tv("resnet18", RESNET, "ResNet18_Weights", "ResNet-18 (11.7 M params)"),
        _tv("resnet50", RESNET, "ResNet50_Weights", "ResNet-50 (25.6 M params)"),
        _tv("densenet121", DENSENET, "DenseNet121_Weights", "DenseNet-121 (8.0 M params)"),
        _tv("densenet201", DENSENET, "DenseNet201_Weights", "DenseNet-201 (20.0 M params)"),
        _tv("efficientnet_b0", EFFICIENTNET, "EfficientNet_B0_Weights", "EfficientNet-B0 (5.3 M params)"),
        _tv("convnext_tiny", CONVNEXT, "ConvNeXt_Tiny_Weights", "ConvNeXt-T (28.6 M params)"),
        _tv("vit_b_16", VIT, "ViT_B_16_Weights", "ViT-B/16 (86.6 M params; images a multiple of 16 px)"),
        *(_cbr(n) for n in CBR_CONFIGS),
    )
}


def get_spec(name: str) -> BackboneSpec:
    """The registry entry for ``name``; unknown names raise with the list of valid ones."""
    try:
        return BACKBONES[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown backbone {name!r}. Valid backbones: {', '.join(BACKBONES)}") from None


@functools.cache
def cut_points(name: str) -> tuple[CutPoint, ...]:
    """The published cut points of a backbone, bottom first, ending with ``full``."""
    spec = get_spec(name)
    return tuple(spec.family.cut_points(spec.builder()))


@functools.cache
def stage_paths(name: str) -> tuple[str, ...]:
    """The dotted paths of a backbone's stages, bottom first (truncation keeps these names)."""
    spec = get_spec(name)
    return tuple(p for p, _ in spec.family.stages(spec.builder()))


def get_cut(name: str, cut: str) -> CutPoint:
    """The named cut point of a backbone; unknown names raise with the valid ones."""
    points = cut_points(name)
    for p in points:
        if p.name == cut:
            return p
    blocks = [p.name for p in points if p.level != "layer"]
    raise ValueError(
        f"Unknown cut {cut!r} for {name}. Block-level cuts: {', '.join(blocks)}; layer-level cuts look like "
        f"{next((p.name for p in points if p.level == 'layer'), '-')}"
    )


# which name a stage keeps when several cut names end there (ResNet's ``layer4`` is ``full``,
# ``layer2.1`` is ``layer2``): the whole network first, then block names, then layer names
_NAME_RANK = {"full": 0, "block": 1, "stem": 1, "layer": 2}
LEVELS = ("block", "layer")


@functools.cache
def distinct_cuts(name: str, level: str = "block") -> tuple[CutPoint, ...]:
    """One cut point per distinct network, bottom first: block-level (``stem``, blocks, ``full``) or
    every layer too (``level="layer"``). Where several names end at the same stage, the network is
    the same and one name is kept (``full`` for the top, else the block name)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}. Got {level!r}")
    best: dict[int, CutPoint] = {}
    for p in cut_points(name):
        if level == "block" and p.level == "layer":
            continue
        if p.stage not in best or _NAME_RANK[p.level] < _NAME_RANK[best[p.stage].level]:
            best[p.stage] = p
    return tuple(best[s] for s in sorted(best))


def cut_stages(name: str) -> dict[str, int]:
    """Cut name -> stage index (the depth along the network; aliases share one)."""
    return {p.name: p.stage for p in cut_points(name)}


def min_input_size(name: str, cut: str = "full") -> int:
    """The smallest square input that a backbone cut at ``cut`` accepts (CBR nets shrink fast)."""
    return get_spec(name).family.min_input_size(name, get_cut(name, cut))


def check_input_size(name: str, cut: str, image_size: int) -> None:
    """Raise ValueError where square images of ``image_size`` px do not fit ``name`` cut at ``cut``."""
    minimum = min_input_size(name, cut)
    if image_size < minimum:
        raise ValueError(
            f"{name} cut at {cut} needs images of at least {minimum} px. Got image_size={image_size}: raise "
            "image_size or choose a shallower cut"
        )
    problem = get_spec(name).family.size_problem(image_size, get_cut(name, cut))
    if problem:
        raise ValueError(f"{problem}. Got image_size={image_size}")


def check_model(m: ModelConfig) -> None:
    """Check a model config's names that live in the registry: the backbone, the cut, ``slim`` for the
    backbone's family and ImageNet weights for a published initialisation."""
    spec = get_spec(m.backbone)
    get_cut(m.backbone, m.cut)
    if m.slim and spec.family.slim_problem(m.backbone):
        raise ValueError(f"slim=True: {spec.family.slim_problem(m.backbone)}")
    init = initialisations.parse(m.init)
    if init.kind.published and spec.weights is None:
        raise ValueError(
            f"init {init.spec!r} is not available for {m.backbone}: it has no ImageNet weights (published ones)"
        )


def check_run(cfg: RunConfig) -> RunConfig:
    """Check a run config against the registry (:func:`check_model`) and that its images are large enough
    for the kept network; what the RunStore does before anything is recorded. Returns ``cfg``."""
    check_model(cfg.model)
    check_input_size(cfg.model.backbone, cfg.model.kept_cut, cfg.data.image_size)
    return cfg


def fit_input_size(name: str, image_size: int, cut: str = "full") -> int:
    """The smallest input from ``image_size`` up that ``name`` cut at ``cut`` accepts (for cost tables)."""
    point = get_cut(name, cut)
    return get_spec(name).family.fit_size(max(image_size, min_input_size(name, cut)), point)


def cam_module(name: str, backbone: nn.Module, cut: str) -> nn.Module:
    """The module of a built backbone of ``name`` whose (B, C, h, w) output Grad-CAM reads at ``cut``."""
    return get_spec(name).family.cam_module(backbone, get_cut(name, cut))


def feature_module(name: str, backbone: nn.Module, cut: str) -> nn.Module:
    """The module of a built backbone of ``name`` whose output is the feature map at ``cut``
    (the cut it was truncated at or an earlier one): where Grad-CAM looks."""
    return get_spec(name).family.feature_module(backbone, get_cut(name, cut))


__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "CutPoint",
    "cam_module",
    "check_input_size",
    "check_model",
    "check_run",
    "fit_input_size",
    "cut_points",
    "cut_stages",
    "distinct_cuts",
    "feature_module",
    "get_cut",
    "get_spec",
    "min_input_size",
]
