"""Backbone registry and published cut points.

Every backbone publishes its cut points (like timm's ``feature_info``): a name from the module
tree, output channels and spatial reduction. Cut points are read from the architecture's own
metadata (block widths, strides), not from a forward pass; a test checks each against one.

A backbone is described as an ordered list of *stages*, the smallest units a cut may fall
between (ResNet: the stem, then every residual block; DenseNet: the stem, every dense layer and
every transition; CBR: every block). Truncation keeps a prefix of the stages and rebuilds the
module tree around the original modules, so parameter names stay those of torchvision
(``layer3.2.conv1.weight``) and pretrained state dicts load unchanged.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import nn
from torchvision.models.densenet import DenseNet, _DenseBlock
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from medtl.models import cbr


@dataclass(frozen=True)
class CutPoint:
    """Where a backbone may be cut: after ``stage`` (an index into the stage list)."""

    name: str
    stage: int
    channels: int
    reduction: int
    level: str  # "stem", "block" (published block-level point), "layer" (finer), or "full"


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    family: str  # "resnet", "densenet" or "cbr"
    builder: Callable[[], nn.Module]
    weights: str | None  # torchvision weights enum name, None when there are no pretrained weights
    description: str


def _tv(name: str) -> Callable[[], nn.Module]:
    return lambda: torchvision.models.get_model(name, weights=None)


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec("resnet18", "resnet", _tv("resnet18"), "ResNet18_Weights", "ResNet-18 (11.7 M params)"),
    "resnet50": BackboneSpec("resnet50", "resnet", _tv("resnet50"), "ResNet50_Weights", "ResNet-50 (25.6 M params)"),
    "densenet121": BackboneSpec(
        "densenet121", "densenet", _tv("densenet121"), "DenseNet121_Weights", "DenseNet-121 (8.0 M params)"
    ),
    "densenet201": BackboneSpec(
        "densenet201", "densenet", _tv("densenet201"), "DenseNet201_Weights", "DenseNet-201 (20.0 M params)"
    ),
    **{
        n: BackboneSpec(n, "cbr", lambda n=n: cbr.CBRNet(n), None, f"Transfusion {n} ({k}x{k} convs, widths {w})")
        for n, (k, w) in cbr.CBR_CONFIGS.items()
    },
}


def get_spec(name: str) -> BackboneSpec:
    """The registry entry for ``name``; unknown names raise with the list of valid ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"Unknown backbone {name!r}. Valid backbones: {', '.join(BACKBONES)}") from None


# --- stages --------------------------------------------------------------------------------------


def stages(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ordered (dotted path, module) stages of a full backbone model."""
    if isinstance(model, ResNet):
        out = [(n, getattr(model, n)) for n in ("conv1", "bn1", "relu", "maxpool")]
        for layer in ("layer1", "layer2", "layer3", "layer4"):
            out += [(f"{layer}.{i}", b) for i, b in enumerate(getattr(model, layer))]
        return out
    if isinstance(model, DenseNet):
        out = []
        for name, m in model.features.named_children():
            if isinstance(m, _DenseBlock):
                out += [(f"features.{name}.{ln}", layer) for ln, layer in m.named_children()]
            else:
                out.append((f"features.{name}", m))
        return out
    if isinstance(model, cbr.CBRNet):
        return list(model.named_children())
    raise TypeError(f"No stage layout for {type(model).__name__}")


def _block_out_channels(block: nn.Module) -> int:
    if isinstance(block, Bottleneck):
        return block.bn3.num_features
    if isinstance(block, BasicBlock):
        return block.bn2.num_features
    raise TypeError(type(block).__name__)


def _stride(m: nn.Module) -> int:
    s = m.stride if hasattr(m, "stride") else 1
    return s[0] if isinstance(s, tuple) else int(s)


@functools.cache
def cut_points(name: str) -> tuple[CutPoint, ...]:
    """The published cut points of a backbone, bottom first, ending with ``full``."""
    return tuple(_cut_points(name))


def _cut_points(name: str) -> list[CutPoint]:
    model = get_spec(name).builder()
    st = stages(model)
    points: list[CutPoint] = []
    if isinstance(model, ResNet):
        red = _stride(model.conv1) * _stride(model.maxpool)
        points.append(CutPoint("stem", 3, model.bn1.num_features, red, "stem"))
        for i, (path, block) in enumerate(st[4:], start=4):
            red *= block.stride
            layer, idx = path.split(".")
            ch = _block_out_channels(block)
            points.append(CutPoint(path, i, ch, red, "layer"))
            if int(idx) == len(getattr(model, layer)) - 1:
                points.append(CutPoint(layer, i, ch, red, "block"))
        points.append(CutPoint("full", len(st) - 1, points[-1].channels, red, "full"))
    elif isinstance(model, DenseNet):
        red = _stride(model.features.conv0) * _stride(model.features.pool0)
        ch = model.features.conv0.out_channels
        points.append(CutPoint("stem", 3, ch, red, "stem"))
        for i, (path, m) in enumerate(st[4:], start=4):
            if path.endswith("norm5"):
                points.append(CutPoint("full", i, ch, red, "full"))
                continue
            if "denselayer" in path:
                ch += m.conv2.out_channels
                points.append(CutPoint(path, i, ch, red, "layer"))
                block_path = path.rsplit(".", 1)[0]
                if i + 1 == len(st) or not st[i + 1][0].startswith(block_path + "."):
                    points.append(CutPoint(block_path, i, ch, red, "block"))
            else:  # transition: BN-ReLU-conv-avgpool
                ch = m.conv.out_channels
                red *= _stride(m.pool)
                points.append(CutPoint(path, i, ch, red, "block"))
    else:
        red = 1
        for i, (path, block) in enumerate(st):
            red *= _stride(block[-1]) if isinstance(block[-1], nn.MaxPool2d) else 1
            points.append(CutPoint(path, i, block[0].out_channels, red, "block"))
        points.append(CutPoint("full", len(st) - 1, points[-1].channels, red, "full"))
    return points


def get_cut(name: str, cut: str) -> CutPoint:
    """The named cut point of a backbone; unknown names raise with the valid ones."""
    points = cut_points(name)
    for p in points:
        if p.name == cut:
            return p
    blocks = [p.name for p in points if p.level in ("stem", "block", "full")]
    raise ValueError(
        f"Unknown cut {cut!r} for {name}. Block-level cuts: {', '.join(blocks)}; layer-level cuts look like "
        f"{next((p.name for p in points if p.level == 'layer'), '-')}"
    )


# --- truncation ----------------------------------------------------------------------------------


class PartialDenseBlock(nn.ModuleDict):
    """The first dense layers of a torchvision ``_DenseBlock``, with its forward and names."""

    def __init__(self, layers: OrderedDict):
        super().__init__(layers)

    def forward(self, init_features: torch.Tensor) -> torch.Tensor:
        features = [init_features]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseFeatures(nn.Module):
    """DenseNet ``features`` up to a cut, then the ReLU the reference forward applies before pooling."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.features(x))


def truncate(model: nn.Module, stage: int) -> nn.Module:
    """A backbone made of the original modules up to and including ``stage``.

    Parameter names are those of the full model. ResNet: ``conv1 .. layerK`` (the last layer
    possibly partial). DenseNet: ``features.*`` then a ReLU, as ``DenseNet.forward`` does.
    CBR: ``cbr1 .. cbrK``.
    """
    kept = stages(model)[: stage + 1]
    if isinstance(model, ResNet):
        tree: OrderedDict[str, nn.Module] = OrderedDict()
        for path, m in kept:
            if "." in path:
                layer, idx = path.split(".")
                tree.setdefault(layer, nn.Sequential())
                tree[layer].add_module(idx, m)
            else:
                tree[path] = m
        return nn.Sequential(tree)
    if isinstance(model, DenseNet):
        feats: OrderedDict[str, nn.Module] = OrderedDict()
        for path, m in kept:
            parts = path.split(".")
            if len(parts) == 3:  # features.denseblockK.denselayerJ
                block = feats.setdefault(parts[1], PartialDenseBlock(OrderedDict()))
                block[parts[2]] = m
            else:
                feats[parts[1]] = m
        return DenseFeatures(nn.Sequential(feats))
    if isinstance(model, cbr.CBRNet):
        return nn.Sequential(OrderedDict(kept))
    raise TypeError(f"Cannot truncate {type(model).__name__}")


def min_input_size(name: str, cut: str = "full") -> int:
    """The smallest square input that a backbone cut at ``cut`` accepts (CBR nets shrink fast)."""
    spec = get_spec(name)
    point = get_cut(name, cut)
    if spec.family != "cbr":
        # padded convs shrink by ceil(n/2); DenseNet's 2x2 transition pools need at least 2x2 input
        return point.reduction
    return cbr.min_input_size(name, point.stage + 1)
