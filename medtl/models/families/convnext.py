"""torchvision's ConvNeXts (Liu et al., CVPR 2022): the stem ``features.0`` (4x4 conv, stride 4,
LayerNorm), four stages of CNBlocks ``features.1``, ``.3``, ``.5``, ``.7`` with the downsampling
layers ``features.2``, ``.4``, ``.6`` (LayerNorm, 2x2 conv, stride 2) between them.

Block-level cuts are the stages (timm's ``feature_info``), layer-level cuts every CNBlock
(``features.5.4``) and every downsampling layer. After pooling the reference applies a LayerNorm
(``classifier.0``) before its linear layer: the pre-logits of a network that keeps the last stage are
that LayerNorm, with its weights; below it the kept stage is narrower, so a fresh LayerNorm of its
width stands in.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.convnext import CNBlock, LayerNorm2d

from medtl.models.families.base import CutPoint, Family, PreLogits, Stages, stride


class ConvNeXtFamily(Family):
    name = "convnext"
    classifier = "classifier.2"

    def stages(self, model: nn.Module) -> Stages:
        out = []
        for name, m in model.features.named_children():
            if isinstance(m[0], CNBlock):
                out += [(f"features.{name}.{j}", block) for j, block in m.named_children()]
            else:  # the stem and the downsampling layers are single stages
                out.append((f"features.{name}", m))
        return out

    def cut_points(self, model: nn.Module) -> list[CutPoint]:
        stem = model.features[0]
        red = stride(stem[0])
        ch = stem[0].out_channels
        points = [CutPoint("stem", 0, ch, red, "stem", "features.0")]
        st = self.stages(model)
        for i, (path, m) in enumerate(st[1:], start=1):
            if isinstance(m, CNBlock):
                points.append(CutPoint(path, i, ch, red, "layer", path))
                stage = path.rsplit(".", 1)[0]
                if i + 1 == len(st) or not st[i + 1][0].startswith(stage + "."):
                    points.append(CutPoint(stage, i, ch, red, "block", stage))
            else:  # downsampling: LayerNorm2d, then a strided conv
                ch, red = m[1].out_channels, red * stride(m[1])
                points.append(CutPoint(path, i, ch, red, "layer", path))
        last = points[-1]
        points.append(CutPoint("full", last.stage, last.channels, red, "full", last.module))
        return points

    def pre_logits(self, model: nn.Module, point: CutPoint) -> PreLogits:
        if point.stage == len(self.stages(model)) - 1:  # the top (``full``, ``features.7``): the reference's own
            return [(None, nn.AdaptiveAvgPool2d(1)), ("classifier.0", model.classifier[0]), (None, nn.Flatten())]
        return [(None, nn.AdaptiveAvgPool2d(1)), (None, LayerNorm2d(point.channels, eps=1e-6)), (None, nn.Flatten())]


CONVNEXT = ConvNeXtFamily()
