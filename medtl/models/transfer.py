"""Build a network for a :class:`~medtl.config.ModelConfig`: backbone cut, head, initialisation,
and what is trained (the transfer strategy).

Strategies, relative to the cut:

- ``finetune`` (FTL): the whole pretrained backbone is trained.
- ``truncate`` (TTL): keep up to the cut, discard the rest, GAP + linear head, train all kept.
- ``freeze`` (LWFT): the whole backbone; up to the cut frozen, BatchNorm there kept in eval mode.
- ``transfusion`` (TF): pretrained up to the cut, everything above re-initialised (optionally slim).
- ``linear``: frozen backbone (optionally cut), only the head is trained.

``random`` initialisation combines with any of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchvision
from torch import nn

from medtl.config import ModelConfig
from medtl.models import registry, weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InputAdapter(nn.Module):
    """Images in [0, 1] -> normalised network input; one grayscale channel is replicated to three
    (or kept, when the first conv was folded). Normalisation lives in the model so that training,
    evaluation, Grad-CAM and exported checkpoints can never disagree about it."""

    def __init__(self, channels: int, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.channels = channels
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != self.channels:
            raise ValueError(f"Expected images with 1 or {self.channels} channels. Got {x.shape[1]}")
        return (x - self.mean) / self.std


class TransferNet(nn.Module):
    """``head(backbone(adapter(x)))``. Backbone parameter names are torchvision's."""

    def __init__(self, adapter: InputAdapter, backbone: nn.Module, head: nn.Module, frozen: Sequence[str] = ()):
        super().__init__()
        self.adapter, self.backbone, self.head = adapter, backbone, head
        self.frozen = tuple(frozen)  # backbone paths kept in eval mode (their BatchNorm statistics fixed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.adapter(x)))

    def train(self, mode: bool = True) -> TransferNet:
        super().train(mode)
        for path in self.frozen:
            self.backbone.get_submodule(path).eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.adapter(x))

    @property
    def last_conv_layer(self) -> nn.Module:
        """The module whose output feeds the head (Grad-CAM's default layer)."""
        bb = self.backbone
        return bb.features if isinstance(bb, registry.DenseFeatures) else bb[-1]


def make_head(channels: int, num_outputs: int, kind: str = "gap", dropout: float = 0.0, map_size: int | None = None):
    if kind == "gap":
        return nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, num_outputs)
        )
    if map_size is None:
        raise ValueError("head 'flatten' needs the image size to size its linear layer")
    return nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * map_size * map_size, num_outputs))


def _feature_map_size(backbone: nn.Module, image_size: int, channels: int) -> int:
    with torch.no_grad():
        was = backbone.training
        backbone.eval()
        out = backbone(torch.zeros(1, channels, image_size, image_size))
        backbone.train(was)
    return out.shape[-1]


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def source_state(cfg: ModelConfig, runs_dir=None) -> dict[str, torch.Tensor] | None:
    """The state dict that initialises the pretrained part, or None for ``random``."""
    if cfg.init == "random":
        return None
    if cfg.init == "imagenet":
        return weights.imagenet_state_dict(cfg.backbone, cfg.weights)
    kind, _, ref = cfg.init.partition(":")
    return weights.file_state_dict(ref) if kind == "file" else weights.run_state_dict(ref, runs_dir)


def _fold_first_conv(backbone: nn.Module) -> None:
    path, conv = next((n, m) for n, m in backbone.named_modules() if isinstance(m, nn.Conv2d))
    folded = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None)
    with torch.no_grad():
        folded.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            folded.bias.copy_(conv.bias)
    _set_submodule(backbone, path, folded)


def build(
    cfg: ModelConfig,
    image_size: int = 224,
    in_channels: int = 1,
    norm: tuple[Sequence[float], Sequence[float]] | None = None,
    runs_dir=None,
) -> TransferNet:
    """The network for ``cfg`` at ``image_size`` with ``in_channels`` input channels (1 or 3).

    Args:
        norm: (mean, std) per channel of the input in [0, 1]. Default: ImageNet statistics for
            pretrained initialisations, (0.5, 0.25) otherwise; pass dataset statistics for random.
        runs_dir: where ``run:<id>`` sources live.

    Raises:
        ValueError: the image is smaller than the cut needs, or the init source does not fit.
        FileNotFoundError: the init source is absent (e.g. ImageNet weights offline).
    """
    spec = registry.get_spec(cfg.backbone)
    point = registry.get_cut(cfg.backbone, cfg.cut)
    minimum = registry.min_input_size(cfg.backbone, cfg.cut if cfg.strategy in ("truncate", "linear") else "full")
    if image_size < minimum:
        raise ValueError(
            f"{cfg.backbone} cut at {cfg.cut} needs images of at least {minimum} px. Got image_size={image_size}"
        )
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 (grayscale) or 3 (RGB). Got {in_channels}")

    full = spec.builder()
    paths = [p for p, _ in registry.stages(full)]
    keep = point.stage if cfg.strategy in ("truncate", "linear") else len(paths) - 1
    backbone = registry.truncate(full, keep)
    below = paths[: point.stage + 1]  # stages at or below the cut

    state = source_state(cfg, runs_dir)
    if state is not None:
        # Transfusion takes only the layers up to the cut from the source; the rest stays random.
        prefixes = below if cfg.strategy == "transfusion" else None
        weights.load_into(backbone, state, cfg.init, prefixes)
    if cfg.strategy == "transfusion" and cfg.slim:
        slim = torchvision.models.get_model(cfg.backbone, weights=None, width_per_group=32)
        for path, module in registry.stages(slim)[point.stage + 1 :]:
            _set_submodule(backbone, path, module)

    frozen: list[str] = []
    if cfg.strategy == "freeze":
        frozen = below
    elif cfg.strategy == "linear":
        frozen = paths[: keep + 1]
    for path in frozen:
        backbone.get_submodule(path).requires_grad_(False)

    channels = in_channels
    if in_channels == 1 and cfg.grayscale == "fold":
        _fold_first_conv(backbone)
    else:
        channels = 3
    if norm is None:
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if cfg.init != "random" else ((0.5,) * 3, (0.25,) * 3)
    else:
        mean, std = norm
    mean, std = _match_channels(mean, channels), _match_channels(std, channels)

    out_channels = registry.get_cut(cfg.backbone, "full" if keep == len(paths) - 1 else cfg.cut).channels
    dropout = cfg.dropout if cfg.dropout is not None else (0.1 if spec.family == "cbr" else 0.0)
    map_size = _feature_map_size(backbone, image_size, channels) if cfg.head == "flatten" else None
    head = make_head(out_channels, cfg.num_outputs, cfg.head, dropout, map_size)
    return TransferNet(InputAdapter(channels, mean, std), backbone, head, frozen)


def _match_channels(values: Sequence[float], channels: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if len(values) == channels:
        return values
    if channels == 1:
        return (sum(values) / len(values),)
    if len(values) == 1:
        return values * channels
    raise ValueError(f"Normalisation has {len(values)} values for {channels} channels")


def param_groups(model: TransferNet, lr: float, backbone_lr_mult: float = 1.0) -> list[dict]:
    """Optimiser parameter groups: trainable backbone parameters (``lr * backbone_lr_mult``) and
    the head (``lr``). Frozen parameters are left out."""
    groups = [
        {
            "name": "backbone",
            "params": [p for p in model.backbone.parameters() if p.requires_grad],
            "lr": lr * backbone_lr_mult,
        },
        {"name": "head", "params": list(model.head.parameters()), "lr": lr},
    ]
    return [g for g in groups if g["params"]]
