"""torchvision's DenseNets: the stem (conv0, norm0, relu0, pool0), every dense layer, every
transition, then ``norm5``.

Block-level cuts are the dense blocks and transitions, layer-level cuts every dense layer
(``features.denseblock2.denselayer3``: the block's input and the first three layers' features,
concatenated). A truncated DenseNet keeps ``features.*`` (a partial last block keeps the block's
forward) and then the ReLU that ``DenseNet.forward`` applies before pooling.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models.densenet import _DenseBlock

from medtl.models.families.base import CutPoint, Family, Stages, nest, stride

STEM = 4  # conv0, norm0, relu0, pool0


class PartialDenseBlock(nn.ModuleDict):
    """The first dense layers of a torchvision ``_DenseBlock``, with its forward and names."""

    def __init__(self, layers: OrderedDict | None = None):
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


class DenseNetFamily(Family):
    name = "densenet"
    classifier = "classifier"

    def stages(self, model: nn.Module) -> Stages:
        out = []
        for name, m in model.features.named_children():
            if isinstance(m, _DenseBlock):
                out += [(f"features.{name}.{ln}", layer) for ln, layer in m.named_children()]
            else:
                out.append((f"features.{name}", m))
        return out

    def cut_points(self, model: nn.Module) -> list[CutPoint]:
        f = model.features
        red = stride(f.conv0) * stride(f.pool0)
        ch = f.conv0.out_channels
        points = [CutPoint("stem", STEM - 1, ch, red, "stem", "features.pool0")]
        st = self.stages(model)
        for i, (path, m) in enumerate(st[STEM:], start=STEM):
            if path.endswith("norm5"):
                points.append(CutPoint("full", i, ch, red, "full", "features"))
            elif "denselayer" in path:
                ch += m.conv2.out_channels
                block = path.rsplit(".", 1)[0]
                # in a backbone truncated here the partial block ends with this layer
                points.append(CutPoint(path, i, ch, red, "layer", block))
                if not st[i + 1][0].startswith(block + "."):
                    points.append(CutPoint(block, i, ch, red, "block", block))
            else:  # transition: BN-ReLU-conv-avgpool
                ch = m.conv.out_channels
                red *= stride(m.pool)
                points.append(CutPoint(path, i, ch, red, "block", path))
        return points

    def truncate(self, model: nn.Module, stage: int) -> nn.Module:
        tree = nest(
            self.stages(model)[: stage + 1], lambda path: PartialDenseBlock() if "." in path else nn.Sequential()
        )
        return DenseFeatures(tree.features)

    def feature_module(self, backbone: nn.Module, point: CutPoint) -> nn.Module:
        module = super().feature_module(backbone, point)
        if point.level == "layer" and next(reversed(module._modules)) != point.name.rsplit(".", 1)[1]:
            # No module outputs the concatenation inside a whole block: only a model truncated there has one.
            raise ValueError(
                f"Cut {point.name!r} lies inside {point.module}, which this model keeps whole: no module outputs "
                f"its feature map. Use {point.module!r} or a model truncated at {point.name!r}"
            )
        return module

    def pooled_sources(self, paths: Sequence[str], point: CutPoint) -> tuple[list[str], bool]:
        # Truncated DenseNets end with a ReLU. Inside a dense block the features are the block's
        # input and its first dense layers, concatenated (pooling commutes with concatenation).
        if point.level != "layer":
            return [point.module], True
        first = point.stage
        while paths[first - 1].startswith(point.module + "."):
            first -= 1
        return [paths[first - 1], *paths[first : point.stage + 1]], True


DENSENET = DenseNetFamily()
