"""The CBR family of Transfusion (Raghu et al., NeurIPS 2019), as sun-umn/TTL uses it.

Each block is conv (stride 1, no padding) -> BatchNorm -> ReLU; the first four blocks are
followed by a 3x3, stride-2 max-pool (so CBR-LargeT's fifth block is not); then global average
pooling, dropout 0.1 and a linear layer (the head, built by :mod:`medtl.models.transfer`).
The minimum input sizes this gives (217, 121, 121, 91 px) are those of the TTL code. Every block
is a block-level cut (``cbr1`` .. ``cbrN``); unpadded convs make the minimum size depend on the cut.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from medtl.models.families.base import CutPoint, Family, Stages, stride

# name -> (kernel size, channels per block)
CBR_CONFIGS: dict[str, tuple[int, tuple[int, ...]]] = {
    "cbr_large_t": (7, (32, 64, 128, 256, 512)),
    "cbr_large_w": (7, (64, 128, 256, 512)),
    "cbr_small": (7, (32, 64, 128, 256)),
    "cbr_tiny": (5, (64, 128, 256, 512)),
}
POOLED_BLOCKS = 4
POOL_KERNEL, POOL_STRIDE = 3, 2


class CBRNet(nn.Sequential):
    """The convolutional body of a CBR network: children ``cbr1`` .. ``cbrN``."""

    def __init__(self, name: str, in_channels: int = 3):
        kernel, widths = CBR_CONFIGS[name]
        blocks = OrderedDict()
        c_in = in_channels
        for i, c_out in enumerate(widths):
            layers = [nn.Conv2d(c_in, c_out, kernel), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            if i < POOLED_BLOCKS:
                layers.append(nn.MaxPool2d(POOL_KERNEL, POOL_STRIDE))
            blocks[f"cbr{i + 1}"] = nn.Sequential(*layers)
            c_in = c_out
        super().__init__(blocks)
        self.cbr_name = name


def output_size(name: str, image_size: int, blocks: int | None = None) -> int:
    """Spatial size after the first ``blocks`` blocks (all by default) for a square input."""
    kernel, widths = CBR_CONFIGS[name]
    n = image_size
    for i in range(blocks if blocks is not None else len(widths)):
        n = n - kernel + 1
        if i < POOLED_BLOCKS:
            n = (n - POOL_KERNEL) // POOL_STRIDE + 1
    return n


def min_input_size(name: str, blocks: int | None = None) -> int:
    """The smallest square input whose feature map after ``blocks`` blocks is at least 1x1."""
    n = 1
    while output_size(name, n, blocks) < 1:
        n += 1
    return n


class CBRFamily(Family):
    name = "cbr"
    default_dropout = 0.1  # the Transfusion / TTL head
    classifier = None  # no reference network: the TTL code's head (GAP, dropout, linear) is the default one

    def stages(self, model: nn.Module) -> Stages:
        return list(model.named_children())

    def cut_points(self, model: nn.Module) -> list[CutPoint]:
        red = 1
        points = []
        for i, (path, block) in enumerate(self.stages(model)):
            red *= stride(block[-1]) if isinstance(block[-1], nn.MaxPool2d) else 1
            points.append(CutPoint(path, i, block[0].out_channels, red, "block", path))
        last = points[-1]
        points.append(CutPoint("full", last.stage, last.channels, red, "full", last.module))
        return points

    def min_input_size(self, backbone: str, point: CutPoint) -> int:
        return min_input_size(backbone, point.stage + 1)


CBR = CBRFamily()
