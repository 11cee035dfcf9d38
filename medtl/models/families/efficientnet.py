"""torchvision's EfficientNets (Tan & Le, ICML 2019): the stem conv ``features.0``, every
MBConv block of the seven stages ``features.1`` .. ``features.7``, then the 1x1 head conv
``features.8``.

Block-level cuts are the stages (``features.3``: 40 channels at 1/8 for B0; timm publishes the
ends of stages 1, 2, 3, 5 and 7 as its ``feature_info``), layer-level cuts every MBConv block
(``features.4.1``). A truncated EfficientNet is ``Sequential(features=Sequential(0, 1, ...))``
with the last stage possibly partial; the reference forward adds nothing before pooling. Its
reference classifier has dropout 0.2, the default here.
"""

from __future__ import annotations

from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from medtl.models.families.base import CutPoint, Family, Stages, stride


def _block_stride(block: nn.Module) -> int:
    # An MBConv block strides once, in its depthwise conv.
    return max(stride(m) for m in block.modules() if isinstance(m, nn.Conv2d))


class EfficientNetFamily(Family):
    name = "efficientnet"
    default_dropout = 0.2
    classifier = "classifier.1"  # after the reference's dropout (0.2, the default here)

    def stages(self, model: nn.Module) -> Stages:
        out = []
        for name, m in model.features.named_children():
            if isinstance(m, Conv2dNormActivation):  # the stem and the head conv are single stages
                out.append((f"features.{name}", m))
            else:
                out += [(f"features.{name}.{j}", block) for j, block in m.named_children()]
        return out

    def cut_points(self, model: nn.Module) -> list[CutPoint]:
        stem = model.features[0]
        red = stride(stem[0])
        points = [CutPoint("stem", 0, stem.out_channels, red, "stem", "features.0")]
        st = self.stages(model)
        for i, (path, m) in enumerate(st[1:-1], start=1):
            red *= _block_stride(m)
            points.append(CutPoint(path, i, m.out_channels, red, "layer", path))
            stage = path.rsplit(".", 1)[0]
            if not st[i + 1][0].startswith(stage + "."):
                points.append(CutPoint(stage, i, m.out_channels, red, "block", stage))
        path, head = st[-1]
        points.append(CutPoint("full", len(st) - 1, head.out_channels, red, "full", path))
        return points


EFFICIENTNET = EfficientNetFamily()
