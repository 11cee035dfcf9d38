"""torchvision's ResNets: the stem (conv1, bn1, relu, maxpool), then every residual block.

Block-level cuts are ``layer1`` .. ``layer4`` (timm's ``feature_info``), layer-level cuts every
block (``layer3.2``). A truncated ResNet is ``Sequential(conv1, bn1, relu, maxpool, layer1, ...)``
with the last layer possibly partial; the reference forward adds nothing before pooling. Transfusion's
``slim`` variant (the layers above the cut at half width) is defined for the bottleneck ResNets.
"""

from __future__ import annotations

import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from medtl.models.families.base import CutPoint, Family, Stages, stride

STEM = ("conv1", "bn1", "relu", "maxpool")
LAYERS = ("layer1", "layer2", "layer3", "layer4")
BOTTLENECK = ("resnet50", "resnet101", "resnet152")  # torchvision's ResNets of bottleneck blocks (slim halves them)


def _out_channels(block: nn.Module) -> int:
    return block.bn2.num_features if isinstance(block, BasicBlock) else block.bn3.num_features


class ResNetFamily(Family):
    name = "resnet"

    def stages(self, model: nn.Module) -> Stages:
        out = [(n, getattr(model, n)) for n in STEM]
        for layer in LAYERS:
            out += [(f"{layer}.{i}", b) for i, b in enumerate(getattr(model, layer))]
        return out

    def cut_points(self, model: nn.Module) -> list[CutPoint]:
        red = stride(model.conv1) * stride(model.maxpool)
        points = [CutPoint("stem", len(STEM) - 1, model.bn1.num_features, red, "stem", "maxpool")]
        for i, (path, block) in enumerate(self.stages(model)[len(STEM) :], start=len(STEM)):
            red *= block.stride
            layer, idx = path.split(".")
            ch = _out_channels(block)
            points.append(CutPoint(path, i, ch, red, "layer", path))
            if int(idx) == len(getattr(model, layer)) - 1:
                points.append(CutPoint(layer, i, ch, red, "block", layer))
        last = points[-1]
        points.append(CutPoint("full", last.stage, last.channels, red, "full", last.module))
        return points

    def slim_problem(self, backbone: str) -> str | None:
        if backbone not in BOTTLENECK:
            return (
                f"slim halves the bottleneck blocks (sun-umn/TTL's slim_resnet50): {backbone} has none. "
                f"Use {' or '.join(BOTTLENECK)}"
            )
        return None

    def slim(self, backbone: str) -> nn.Module:
        """Bottleneck blocks at half width (sun-umn/TTL's slim_resnet50): ``width_per_group=32``."""
        return torchvision.models.get_model(backbone, weights=None, width_per_group=32)


RESNET = ResNetFamily()
