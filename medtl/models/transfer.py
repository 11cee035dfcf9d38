"""Build a network for a :class:`~medtl.config.ModelConfig`: backbone cut, head, initialisation,
and what is trained (the transfer strategy).

What each strategy keeps, freezes and re-initialises is its record in :mod:`medtl.strategies`;
what it does beyond that is its rule in :data:`BUILD_RULES`. Strategies, relative to the cut:

- ``finetune`` (FTL): the whole pretrained backbone is trained.
- ``truncate`` (TTL): keep up to the cut, discard the rest, GAP + linear head, train all kept.
- ``freeze`` (LWFT): the whole backbone; up to the cut frozen, BatchNorm there kept in eval mode.
- ``transfusion`` (TF): pretrained up to the cut, everything above re-initialised (optionally slim).
- ``linear``: frozen backbone (optionally cut), only the head is trained.

``random`` initialisation combines with any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from medtl import initialisations
from medtl.config import ModelConfig
from medtl.models import registry, weights
from medtl.models.registry import CutPoint
from medtl.strategies import Strategy, get_strategy

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

    def __init__(
        self,
        adapter: InputAdapter,
        backbone: nn.Module,
        head: nn.Module,
        frozen: Sequence[str] = (),
        *,
        arch: str,
        cut: str = "full",
    ):
        super().__init__()
        self.adapter, self.backbone, self.head = adapter, backbone, head
        self.frozen = tuple(frozen)  # backbone paths kept in eval mode (their BatchNorm statistics fixed)
        self.arch, self.cut = arch, cut  # the registry backbone and the deepest cut the backbone keeps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.adapter(x)))

    def train(self, mode: bool = True) -> TransferNet:
        super().train(mode)
        for path in self.frozen:
            self.backbone.get_submodule(path).eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.adapter(x))

    def feature_module(self, cut: str | None = None) -> nn.Module:
        """The backbone module whose output is the feature map at ``cut`` (default: the map that
        feeds the head); ``cut`` is the kept cut or an earlier one. The backbone's family decides."""
        return registry.feature_module(self.arch, self.backbone, cut or self.cut)

    def cam_module(self, cut: str | None = None) -> nn.Module:
        """The module whose output is the (B, C, h, w) map Grad-CAM reads at ``cut`` (default: the kept
        cut); the feature module itself for a convolutional family. The backbone's family decides."""
        return registry.cam_module(self.arch, self.backbone, cut or self.cut)

    def pool(self, out: torch.Tensor) -> torch.Tensor:
        """A feature module's output as one vector per image, as the head pools it (the family's rule)."""
        return registry.get_spec(self.arch).family.pool(out)

    @property
    def last_conv_layer(self) -> nn.Module:
        """The module whose map Grad-CAM reads by default (at the features that feed the head)."""
        return self.cam_module()


def make_head(pre_logits: Sequence[nn.Module], features: int, num_outputs: int, dropout: float = 0.0) -> nn.Sequential:
    """``pre_logits`` (the family's pooling and norm, or a flatten), dropout, then the linear logits layer.

    The children are numbered, so a ``gap`` head of pooling and flattening is ``head.3`` = the linear
    layer, as in every ``model.pt`` written before families owned their head."""
    return nn.Sequential(*pre_logits, nn.Dropout(dropout), nn.Linear(features, num_outputs))


def _flat_size(backbone: nn.Module, image_size: int, channels: int) -> int:
    """The backbone's output values per image (the ``flatten`` head's input)."""
    with torch.no_grad():
        was = backbone.training
        backbone.eval()
        out = backbone(torch.zeros(1, channels, image_size, image_size))
        backbone.train(was)
    return out[0].numel()


def head_state(head: nn.Sequential, sources: Mapping[int, str], state: Mapping[str, torch.Tensor]) -> dict:
    """The entries of ``state`` (reference names) that belong to ``head``: for each child ``i`` taken
    from the reference network at path ``sources[i]``, its parameters and buffers under ``i.``."""
    out = {}
    for i, path in sources.items():
        for name in head[i].state_dict():
            if f"{path}.{name}" in state:
                out[f"{i}.{name}"] = state[f"{path}.{name}"]
    return out


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def _fold_first_conv(backbone: nn.Module) -> None:
    path, conv = next((n, m) for n, m in backbone.named_modules() if isinstance(m, nn.Conv2d))
    folded = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None)
    with torch.no_grad():
        folded.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            folded.bias.copy_(conv.bias)
    _set_submodule(backbone, path, folded)


@dataclass
class Plan:
    """What :func:`build` knows when a strategy's build rule runs."""

    cfg: ModelConfig
    strategy: Strategy
    paths: list[str]  # stage paths of the full backbone
    point: CutPoint  # the configured cut
    kept: CutPoint  # the deepest point the network keeps
    backbone: nn.Module  # truncated at ``kept``, not yet initialised

    @property
    def family(self):
        return registry.get_spec(self.cfg.backbone).family

    @property
    def below(self) -> list[str]:
        """Stages at or below the cut, with the parameters of the first stage outside its module."""
        return [*self.paths[: self.point.stage + 1], *self.family.loose_params]

    @property
    def frozen(self) -> list[str]:
        """The stages the strategy's record freezes."""
        all_kept = [*self.paths[: self.kept.stage + 1], *self.family.loose_params]
        return {"none": [], "below": self.below, "all": all_kept}[self.strategy.frozen]


def load_source(plan: Plan, state: Mapping[str, torch.Tensor] | None) -> None:
    """Initialise the backbone from the source; a strategy that re-initialises above the cut takes
    only the stages up to the cut (the rest keeps its random initialisation)."""
    if state is not None:
        prefixes = plan.below if plan.strategy.reinit_above else None
        weights.load_into(plan.backbone, state, plan.cfg.init, prefixes)


def load_then_slim(plan: Plan, state: Mapping[str, torch.Tensor] | None) -> None:
    """Transfusion: :func:`load_source`, then with ``slim`` the stages above the cut at half width
    (the family's :meth:`~medtl.models.families.base.Family.slim`: bottleneck ResNets)."""
    load_source(plan, state)
    if plan.cfg.slim:
        for path, module in plan.family.stages(plan.family.slim(plan.cfg.backbone))[plan.point.stage + 1 :]:
            _set_submodule(plan.backbone, path, module)


# A strategy's build rule: what it does to the truncated backbone beyond what its record says
# (kept stages, frozen stages and re-initialisation are read from the record by ``build``).
# Adding a strategy = its record in ``medtl.strategies`` + its rule here.
BUILD_RULES: dict[str, Callable[[Plan, Mapping[str, torch.Tensor] | None], None]] = {
    "truncate": load_source,
    "finetune": load_source,
    "freeze": load_source,
    "transfusion": load_then_slim,
    "linear": load_source,
}


def build(
    cfg: ModelConfig,
    image_size: int = 224,
    in_channels: int = 1,
    norm: tuple[Sequence[float], Sequence[float]] | None = None,
    source: Mapping[str, torch.Tensor] | None = None,
) -> TransferNet:
    """The network for ``cfg`` at ``image_size`` with ``in_channels`` input channels (1 or 3).

    Args:
        norm: (mean, std) per channel of the input in [0, 1]. Default: ImageNet statistics for
            pretrained initialisations, (0.5, 0.25) otherwise; pass dataset statistics for random.
        source: the state dict ``cfg.init`` resolves to (:func:`medtl.initialisations.state_dict`, by the
            caller that owns the run store for a ``run:`` source); None resolves a kind that needs no
            store here. Ignored for ``random``.

    Raises:
        ValueError: the image is smaller than the cut needs, or the init source does not fit. The cut
            and names are the config's to check (the strategy's rule on construction, the registry's
            names in :func:`~medtl.models.registry.check_model`); an unknown name raises from its lookup here.
        FileNotFoundError: the init source is absent (e.g. ImageNet weights offline).
    """
    spec = registry.get_spec(cfg.backbone)
    strategy = get_strategy(cfg.strategy)
    point = registry.get_cut(cfg.backbone, cfg.cut)
    kept = registry.get_cut(cfg.backbone, cfg.kept_cut)
    registry.check_input_size(cfg.backbone, kept.name, image_size)
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 (grayscale) or 3 (RGB). Got {in_channels}")

    full = spec.builder()
    paths = [p for p, _ in spec.family.stages(full)]
    pre = spec.family.pre_logits(full, kept) if cfg.head == "gap" else [(None, nn.Flatten())]
    backbone = spec.family.truncate(full, kept.stage)
    plan = Plan(cfg, strategy, paths, point, kept, backbone)
    init = initialisations.parse(cfg.init)
    if not init.pretrained:
        source = None
    elif source is None:
        source = init.state_dict(cfg.backbone, cfg.weights)  # a run: source refuses: it needs its store
    BUILD_RULES[strategy.name](plan, source)
    channels = in_channels
    if in_channels == 1 and cfg.grayscale == "fold":
        _fold_first_conv(backbone)  # before freezing: the folded conv is frozen with its stage
    else:
        channels = 3
    for path in plan.frozen:
        if path in spec.family.loose_params:
            backbone.get_parameter(path).requires_grad_(False)
        else:
            backbone.get_submodule(path).requires_grad_(False)
    if norm is None:
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if init.pretrained else ((0.5,) * 3, (0.25,) * 3)
    else:
        mean, std = norm
    mean, std = _match_channels(mean, channels), _match_channels(std, channels)

    dropout = cfg.dropout if cfg.dropout is not None else spec.family.default_dropout
    width = kept.channels if cfg.head == "gap" else _flat_size(backbone, image_size, channels)
    head = make_head([m for _, m in pre], width, cfg.num_outputs, dropout)
    if source is not None and not strategy.reinit_above:
        # the pre-logits taken from the reference network (ConvNeXt's and ViT's LayerNorm) load from the
        # source where it has them: a reference state dict does, a MedTL model.pt holds the backbone only
        sources = {i: path for i, (path, _) in enumerate(pre) if path is not None}
        head.load_state_dict(head_state(head, sources, source), strict=False)
    if strategy.frozen == "all":  # the pre-logits belong to the frozen network: a linear probe trains the logits
        head[: len(pre)].requires_grad_(False)
    frozen = [p for p in plan.frozen if p not in spec.family.loose_params]
    return TransferNet(InputAdapter(channels, mean, std), backbone, head, frozen, arch=cfg.backbone, cut=kept.name)


def _inferred_record(sd: dict[str, torch.Tensor], cfg: ModelConfig, image_size: int) -> dict[str, Any]:
    """For a ``model.pt`` written before the record existed: the head size and channels from tensor shapes."""
    head = next(k for k in reversed(list(sd)) if k.startswith("head.") and k.endswith("weight"))
    in_ch = 1 if cfg.grayscale == "fold" else (3 if sd["adapter.mean"].numel() == 3 else 1)
    return {
        "config": cfg.replace(num_outputs=int(sd[head].shape[0])).to_dict(),
        "image_size": image_size,
        "in_channels": in_ch,
        "mean": sd["adapter.mean"].flatten().tolist(),
        "std": sd["adapter.std"].flatten().tolist(),
    }


def rebuild(ck: dict[str, Any], fallback_cfg: ModelConfig, fallback_image_size: int) -> TransferNet:
    """The network of a ``model.pt`` dict, weights loaded, in train mode as built.

    Uses the file's model record; files without one (older runs) fall back to the run's config
    and the shapes of the stored tensors."""
    sd = ck["state_dict"]
    rec = ck.get("model") or _inferred_record(sd, fallback_cfg, fallback_image_size)
    cfg = ModelConfig.from_dict(rec["config"]).replace(init="random")  # the weights come from the file
    model = build(cfg, rec["image_size"], rec["in_channels"], (rec["mean"], rec["std"]))
    model.load_state_dict(sd)
    return model


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
        {"name": "head", "params": [p for p in model.head.parameters() if p.requires_grad], "lr": lr},
    ]
    return [g for g in groups if g["params"]]
