"""What every backbone family knows: its stages, published cut points, truncation, minimum input
size, what follows the kept features (pooling, norm: the pre-logits) and the module to explain at a cut.

A backbone is an ordered list of *stages*, the smallest units a cut may fall between. Cut points
are published from the architecture's own metadata (block widths, strides), like timm's
``feature_info``; a test checks them all against one forward pass. Truncation keeps a prefix of
the stages and rebuilds the module tree around the original modules, so parameter names stay the
source's (``layer3.2.conv1.weight``) and pretrained state dicts load unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CutPoint:
    """Where a backbone may be cut: after ``stage`` (an index into the stage list).

    Attributes:
        level: ``"stem"``, ``"block"`` (a published block-level point), ``"layer"`` (finer) or ``"full"``.
        module: dotted path, in a backbone truncated here, of the module whose output is the
            feature map at this cut (Grad-CAM's layer); timm's ``feature_info`` calls it ``module``.
    """

    name: str
    stage: int
    channels: int
    reduction: int
    level: str
    module: str = ""


Stages = list[tuple[str, nn.Module]]
# What follows the kept features up to the logits layer: (the module's path in the reference network
# when its parameters are the reference's, else None; the module), in order
PreLogits = list[tuple[str | None, nn.Module]]


class Family:
    """One backbone family. Subclasses implement :meth:`stages` and :meth:`cut_points`."""

    name: str = ""
    default_dropout: float = 0.0  # dropout before the linear head when the config leaves it unset
    classifier: str | None = "fc"  # the reference network's logits layer (a Linear); None: it has none
    loose_params: tuple[str, ...] = ()  # parameters outside every stage module, part of the first stage

    def stages(self, model: nn.Module) -> Stages:
        """The ordered (dotted path, module) stages of a full model of this family."""
        raise NotImplementedError

    def cut_points(self, model: nn.Module) -> list[CutPoint]:
        """The published cut points of a full model, bottom first, ending with ``full``."""
        raise NotImplementedError

    def truncate(self, model: nn.Module, stage: int) -> nn.Module:
        """A backbone made of the original modules up to and including ``stage``, names unchanged."""
        return nest(self.stages(model)[: stage + 1])

    def pre_logits(self, model: nn.Module, point: CutPoint) -> PreLogits:
        """What comes after the features kept at ``point`` of a full ``model`` and before the logits
        layer, as the reference forward does it: global average pooling and flattening here. A module
        taken from ``model`` with its reference path gets the source's weights for it."""
        return [(None, nn.AdaptiveAvgPool2d(1)), (None, nn.Flatten())]

    def pool(self, out: torch.Tensor) -> torch.Tensor:
        """A feature module's output as one vector per image, as the pre-logits pool it (the advisor's
        and CKA's pooled features): the spatial mean here."""
        return out.mean(dim=(2, 3))

    def feature_map(self, out: torch.Tensor) -> torch.Tensor:
        """A feature module's output as a (B, C, h, w) map (a map already here)."""
        return out

    def slim_problem(self, backbone: str) -> str | None:
        """Why Transfusion's ``slim`` variant does not exist for ``backbone``, or None."""
        return f"slim is defined for ResNets of bottleneck blocks (sun-umn/TTL's slim_resnet50), not {backbone}"

    def slim(self, backbone: str) -> nn.Module:
        """A full model of ``backbone`` whose stages above a cut replace the built ones in ``slim``
        (half width, as sun-umn/TTL's slim_resnet50); only where :meth:`slim_problem` is None."""
        raise ValueError(self.slim_problem(backbone))

    def size_problem(self, size: int, point: CutPoint) -> str | None:
        """Why a square input of ``size`` px (at least the minimum) does not fit, or None."""
        return None

    def fit_size(self, size: int, point: CutPoint) -> int:
        """The nearest input size from ``size`` up that fits (``size`` itself here)."""
        return size

    def min_input_size(self, backbone: str, point: CutPoint) -> int:
        """The smallest square input a backbone cut at ``point`` accepts.

        Padded convolutions shrink by ceil(n/2), so any input of ``reduction`` pixels gives at least
        a 1x1 map (and 2x2 average pools get at least 2x2 input).
        """
        return point.reduction

    def feature_module(self, backbone: nn.Module, point: CutPoint) -> nn.Module:
        """The module of a built (possibly truncated) backbone whose output is the feature map at
        ``point``: the cut it was truncated at or any earlier one."""
        try:
            return backbone.get_submodule(point.module)
        except AttributeError:
            raise ValueError(
                f"The backbone has no module {point.module!r} for cut {point.name!r}: it was truncated below it. "
                "Choose the cut the model was built with or an earlier one"
            ) from None

    def cam_module(self, backbone: nn.Module, point: CutPoint) -> nn.Module:
        """The module whose output is the (B, C, h, w) map Grad-CAM reads at ``point``: the feature module here."""
        return self.feature_module(backbone, point)

    def pooled_sources(self, paths: Sequence[str], point: CutPoint) -> tuple[list[str], bool]:
        """For scoring every cut in one forward pass of a FULL model of this family (stage paths
        ``paths``): the module paths whose globally pooled outputs, concatenated, equal the pooled
        features of a backbone truncated at ``point``, and whether a ReLU comes first (the truncated
        forward applies one)."""
        return [point.module], False


def nest(
    kept: Sequence[tuple[str, nn.Module]], container: Callable[[str], nn.Module] = lambda path: nn.Sequential()
) -> nn.Sequential:
    """Rebuild a module tree from (dotted path, module) stages, in order.

    ``conv1, layer1.0, layer1.1`` becomes ``Sequential(conv1, layer1=Sequential(0, 1))``: the
    parameter names are the paths. ``container(path)`` makes the parent modules (a Sequential by
    default; DenseNet's partial dense blocks need their own forward).
    """
    root = nn.Sequential()
    for path, module in kept:
        parent = root
        parts = path.split(".")
        for i, part in enumerate(parts[:-1]):
            if part not in parent._modules:
                parent.add_module(part, container(".".join(parts[: i + 1])))
            parent = parent._modules[part]
        parent.add_module(parts[-1], module)
    return root


def stride(m: nn.Module) -> int:
    """The (square) stride of a conv or pool, 1 for modules without one."""
    s = getattr(m, "stride", 1)
    return s[0] if isinstance(s, tuple) else int(s)
