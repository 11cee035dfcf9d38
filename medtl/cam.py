"""Grad-CAM maps of a network, on an eval copy, at the map that feeds the head or any earlier cut.

Maps are computed with Captum's ``LayerGradCam`` at the last layer of the (possibly truncated)
backbone, or at any earlier cut point (resolved by :func:`feature_module`), and upsampled
bilinearly to the image for display. They always run on an eval-mode model with in-place ReLUs
made out-of-place (backward hooks and in-place ops do not mix), never on a training model
(:func:`eval_copy`), and not under ``torch.inference_mode`` (gradients are needed).

With a GAP head Grad-CAM is each position's contribution to the logit, and part of it is the same
for every image: on SynthCXR (ResNet18, nodule, 64 px) the edge cells carry a positive offset in
positives and negatives alike (the border: no thorax, zero padding), normal lung a negative one,
so the plain map's maximum lies in an edge cell for almost every image and the pointing game
falls to 0. Subtracting the mean signed map of negative images (:func:`reference_map`) before
the ReLU leaves the evidence the image adds over a typical negative, and it points at the lesion
(0.17 -> 0.41 at layer2, 0.55 -> 0.66 at layer1, chance 0.02).

The randomised-weights check (Adebayo et al., 2018) recomputes maps with re-initialised weights:
a faithful map must change.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from medtl.config import ModelConfig
from medtl.models import registry
from medtl.models.transfer import TransferNet


def ready(model: TransferNet) -> TransferNet:
    """``model`` itself, put in the state Grad-CAM needs: eval mode, out-of-place ReLUs. For a
    model the caller owns (e.g. freshly loaded); :func:`eval_copy` leaves a training model alone."""
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return model.eval()


def eval_copy(model: TransferNet) -> TransferNet:
    """``model`` itself when it is ready for Grad-CAM (eval mode, no in-place ReLU), else an
    eval-mode copy with out-of-place ReLUs: a training model is never put in eval mode or hooked."""
    if not model.training and not any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules()):
        return model
    return ready(copy.deepcopy(model))


def feature_module(model: TransferNet, config: ModelConfig, cut: str | None = None) -> nn.Module:
    """The module of ``model`` (built for ``config``) whose output is the (B, C, h, w) map Grad-CAM
    reads at ``cut``.

    ``None`` is the map that feeds the head. Cuts above what the network keeps raise ValueError
    naming the layers there are; which module gives a cut's map is the backbone family's
    knowledge (:meth:`TransferNet.cam_module`: a ViT's patch tokens as a grid).
    """
    if cut is None:
        return model.last_conv_layer
    kept = registry.get_cut(config.backbone, config.kept_cut)
    if registry.get_cut(config.backbone, cut).stage > kept.stage:
        raise ValueError(
            f"layer {cut!r} lies above what this network keeps (up to {kept.name!r}). "
            f"Grad-CAM layers: {', '.join(gradcam_layers(config))}"
        )
    return model.cam_module(cut)


def gradcam_layers(config: ModelConfig) -> list[str]:
    """The block-level cut points where Grad-CAM can be read for a network built for ``config``,
    bottom first, ending with the deepest kept point."""
    kept = registry.get_cut(config.backbone, config.kept_cut)
    points = registry.cut_points(config.backbone)
    names = [p.name for p in points if p.level in ("stem", "block") and p.stage < kept.stage]
    return names + [kept.name]


def gradcam_native(
    model: TransferNet,
    images: torch.Tensor,
    layer: nn.Module | None = None,
    target: int = 0,
    batch_size: int = 32,
    reference: np.ndarray | None = None,
    signed: bool = False,
) -> np.ndarray:
    """Grad-CAM maps (B, h, w) at the layer's own resolution for float images in [0, 1].

    Args:
        reference: a signed map (h, w) subtracted before the ReLU (see :func:`reference_map`).
        signed: return the maps before the ReLU.
    """
    cam = LayerGradCam(model, layer or model.last_conv_layer)
    out = []
    for s in range(0, len(images), batch_size):
        x = images[s : s + batch_size].detach().clone().requires_grad_(True)
        out.append(cam.attribute(x, target=target, relu_attributions=False).detach()[:, 0].numpy())
    maps = np.concatenate(out)
    if reference is not None:
        maps = maps - reference
    return maps if signed else np.clip(maps, 0, None)


def reference_map(
    model: TransferNet, images: torch.Tensor, layer: nn.Module | None = None, target: int = 0
) -> np.ndarray:
    """The mean signed Grad-CAM map (h, w) of reference images (e.g. negatives of the validation split).

    With a GAP head, Grad-CAM is each position's contribution to the logit. Part of it is the same
    for every image (on SynthCXR: positive at the image border, where the thorax is absent and the
    convolutions see zero padding; negative over normal lung). Subtracted, what remains is the
    evidence this image adds over a typical negative one: a *contrastive* map.
    """
    return gradcam_native(model, images, layer, target, signed=True).mean(axis=0)


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Maps (B, h, w) resized bilinearly to ``size`` (for display and energy-in-mask)."""
    attr = torch.from_numpy(np.ascontiguousarray(maps))[:, None]
    return LayerAttribution.interpolate(attr, tuple(size), interpolate_mode="bilinear")[:, 0].numpy()


def gradcam(
    model: TransferNet, images: torch.Tensor, layer: nn.Module | None = None, target: int = 0, batch_size: int = 32
) -> np.ndarray:
    """Grad-CAM maps (B, H, W), non-negative, upsampled to the images (B, C, H, W) in [0, 1]."""
    return upsample(gradcam_native(model, images, layer, target, batch_size), tuple(images.shape[-2:]))


def randomized_copy(model: TransferNet, seed: int = 1) -> TransferNet:
    """A copy of the network with every layer re-initialised (the input normalisation kept)."""
    torch.manual_seed(seed)
    rand = copy.deepcopy(model)
    for m in rand.backbone.modules():
        if hasattr(m, "reset_parameters") and m is not rand.backbone:
            m.reset_parameters()
    for m in rand.head.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return rand.eval()


def randomization_check(
    model: TransferNet, images: torch.Tensor, maps: np.ndarray, seed: int = 1, layer: nn.Module | None = None
) -> float:
    """Mean Spearman rank correlation between the maps and those of the same network with
    re-initialised weights (Adebayo et al. 2018), at the same ``layer``: near 1 means the maps
    ignore the weights."""
    from scipy.stats import spearmanr

    rand = randomized_copy(model, seed)
    path = next((n for n, m in model.named_modules() if m is layer), None) if layer is not None else None
    rmaps = gradcam(rand, images, rand.get_submodule(path) if path else None)
    rs = [
        spearmanr(a.ravel(), b.ravel()).statistic
        for a, b in zip(maps, rmaps, strict=True)
        if a.std() > 0 and b.std() > 0
    ]
    return float(np.mean(rs)) if rs else 0.0
