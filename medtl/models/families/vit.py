"""torchvision's Vision Transformers (Dosovitskiy et al., ICLR 2021): the patch embedding
``conv_proj`` (with the class token and the position embedding), then the encoder blocks
``encoder.layers.encoder_layer_0`` .. ``_11`` (ViT-B/16).

Cuts fall after encoder blocks (block level; no cut after the embedding: there the class token
has seen no image). A truncated ViT outputs tokens (B, 1 + h*w, D); the pre-logits are the class
token through the final LayerNorm ``encoder.ln`` (with its weights: the hidden width is the same
after every block), as in torchvision's forward. Every representation read at a cut is the class
token (:meth:`pool`: the advisor, CKA); Grad-CAM reads a map, the patch tokens reshaped to their
h x w grid by a parameter-free :class:`PatchGrid` module on the forward path (its output is used,
so gradients reach it). At the kept top the map is read at the block's *input*, as
pytorch-grad-cam does for ViTs: the head sees only the class token, so the patch tokens a network's
last block outputs carry no gradient.

Image size: any multiple of the patch size (16 px), not only torchvision's 224. The position
embedding (a 14 x 14 grid for 224 px) is interpolated bicubically to the image's grid in the
forward pass, as torchvision's ``interpolate_embeddings`` and timm do to fine-tune at another
resolution: this keeps ImageNet weights usable at the small sizes medical data sets come in (28-128 px)
and lets tests run at 32 px. At 224 px the network is exactly torchvision's. Other sizes are refused
with a clear error (the patch embedding would silently drop the remainder).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from medtl.models.families.base import CutPoint, Family, PreLogits, Stages

EMBEDDING = "conv_proj"
LOOSE = ("class_token", "encoder.pos_embedding")  # parameters outside any stage module: the embedding's


class PatchGrid(nn.Module):
    """Patch tokens (B, h*w, D) -> their map (B, D, h, w): where Grad-CAM reads a ViT."""

    def forward(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


class ClassToken(nn.Module):
    """Tokens (B, 1 + N, D) -> the class token (B, D)."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens[:, 0]


class ViTFeatures(nn.Module):
    """A ViT's embedding and its first ``blocks`` encoder blocks, torchvision's modules and names."""

    def __init__(self, vit: nn.Module, blocks: int):
        super().__init__()
        self.patch_size = vit.patch_size
        self.conv_proj = vit.conv_proj
        self.class_token = vit.class_token
        self.encoder = nn.Module()
        self.encoder.pos_embedding = vit.encoder.pos_embedding
        self.encoder.dropout = vit.encoder.dropout
        self.encoder.layers = nn.Sequential(OrderedDict(list(vit.encoder.layers.named_children())[:blocks]))
        self.grids = nn.ModuleDict({name: PatchGrid() for name in self.encoder.layers._modules})

    def position(self, h: int, w: int) -> torch.Tensor:
        """The position embedding for an h x w patch grid (interpolated from the stored grid)."""
        pos = self.encoder.pos_embedding
        g = math.isqrt(pos.shape[1] - 1)
        if (h, w) == (g, g):
            return pos
        grid = pos[:, 1:].reshape(1, g, g, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=True)
        return torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.patch_size or x.shape[-2] % self.patch_size:
            raise ValueError(f"ViT inputs are multiples of {self.patch_size} px. Got {tuple(x.shape[-2:])}")
        x = self.conv_proj(x)
        h, w = x.shape[-2:]
        x = torch.cat([self.class_token.expand(len(x), -1, -1), x.flatten(2).transpose(1, 2)], 1)
        x = self.encoder.dropout(x + self.position(h, w))
        names = list(self.encoder.layers._modules)
        for i, name in enumerate(names):
            top = i == len(names) - 1
            x = self._through_grid(name, x, h, w) if top else x
            x = self.encoder.layers._modules[name](x)
            x = x if top else self._through_grid(name, x, h, w)
        return x

    def _through_grid(self, name: str, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        grid = self.grids[name](x[:, 1:], h, w)  # the same values, seen as a map
        return torch.cat([x[:, :1], grid.flatten(2).transpose(1, 2)], 1)


class ViTFamily(Family):
    name = "vit"
    classifier = "heads.head"
    loose_params = LOOSE

    def stages(self, model: nn.Module) -> Stages:
        return [(EMBEDDING, model.conv_proj)] + [
            (f"encoder.layers.{name}", block) for name, block in model.encoder.layers.named_children()
        ]

    def cut_points(self, model: nn.Module) -> list[CutPoint]:
        width, patch = model.hidden_dim, model.patch_size
        points = [CutPoint(path, i, width, patch, "block", path) for i, (path, _) in enumerate(self.stages(model))][1:]
        last = points[-1]
        return [*points, CutPoint("full", last.stage, width, patch, "full", last.module)]

    def truncate(self, model: nn.Module, stage: int) -> nn.Module:
        return ViTFeatures(model, stage)  # stage 0 is the embedding: stage k keeps k blocks

    def size_problem(self, size: int, point: CutPoint) -> str | None:
        if size % point.reduction:
            return f"ViT images are a multiple of its {point.reduction} px patches"
        return None

    def fit_size(self, size: int, point: CutPoint) -> int:
        return -(-size // point.reduction) * point.reduction

    def pre_logits(self, model: nn.Module, point: CutPoint) -> PreLogits:
        return [(None, ClassToken()), ("encoder.ln", model.encoder.ln)]

    def pool(self, out: torch.Tensor) -> torch.Tensor:
        return out[:, 0]

    def feature_map(self, out: torch.Tensor) -> torch.Tensor:
        g = math.isqrt(out.shape[1] - 1)
        return PatchGrid()(out[:, 1:], g, g)

    def cam_module(self, backbone: nn.Module, point: CutPoint) -> nn.Module:
        self.feature_module(backbone, point)  # kept, or a clear error
        return backbone.grids[point.module.rsplit(".", 1)[1]]


VIT = ViTFamily()
