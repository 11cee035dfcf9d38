"""Grad-CAM on trained runs, overlays, and checks of where the maps point.

Maps are computed with Captum's ``LayerGradCam`` (``relu_attributions=True``) at the last layer
of the (possibly truncated) backbone, or at any earlier cut point (``layer=``, resolved by
:func:`feature_module`), and upsampled bilinearly to the image for display. They always run on a
fresh eval-mode model loaded from the run's ``model.pt`` with in-place ReLUs made out-of-place
(backward hooks and in-place ops do not mix), never on a training model, and not under
``torch.inference_mode`` (gradients are needed).

Where lesion masks exist (SynthCXR) two scores say whether a map looks at the lesion:
the *pointing game* (the map's maximum lies in the mask or closer to it than 15 px at 224 px,
Euclidean, as in Zhang et al. 2016 and TorchRay, scaled to the image) and *energy-in-mask* (the
share of positive saliency inside the mask). Both have an exact chance level in closed form: a
uniform random map points at a uniformly random cell of its grid, so its hit rate is the share of
cells whose centre lies in the tolerance region; its expected energy share is the mask's area
fraction (exchangeable values, and bilinear upsampling by a whole factor gives every cell the
same total weight).

The pointing game plays the map at its *native* resolution: the maximum cell is mapped to the
image pixel at its centre. Taking the argmax of the bilinearly upsampled map instead puts every
edge-cell peak on the image border (the upsampled map is flat between the outermost cell centre
and the border, and ``argmax`` returns the first pixel of that plateau: the top-left corner).
A coarse map cannot point closer than its cell centres, so the best score a map of that
resolution can reach is reported too (``pointing_game_ceiling``).

With a GAP head Grad-CAM is each position's contribution to the logit, and part of it is the same
for every image: on SynthCXR (ResNet18, nodule, 64 px) the edge cells carry a positive offset in
positives and negatives alike (the border: no thorax, zero padding), normal lung a negative one,
so the plain map's maximum lies in an edge cell for almost every image and the pointing game
falls to 0. ``contrast=True`` subtracts the mean signed map of negative validation images
(:func:`reference_map`) before the ReLU: what remains is the evidence the image adds over a
typical negative, and it points at the lesion (0.17 -> 0.41 at layer2, 0.55 -> 0.66 at layer1,
chance 0.02).

The randomised-weights check (Adebayo et al., 2018) recomputes maps with re-initialised weights:
a faithful map must change.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from scipy.ndimage import distance_transform_edt
from torch import nn

from medtl.checkpoint import MODEL_FILE
from medtl.checkpoint import read as read_checkpoint
from medtl.config import ModelConfig
from medtl.data import ImageSet
from medtl.data.preview import outline
from medtl.models import rebuild, registry
from medtl.models.transfer import TransferNet
from medtl.runs import RunStore
from medtl.strategies import get_strategy


def load_model(store: RunStore, run_id: str) -> TransferNet:
    """A fresh eval-mode copy of a run's selected model, in-place ReLUs replaced.

    Rebuilt from the model record in ``model.pt`` (the network as trained: outputs, input
    channels, normalisation); older files without one fall back to the run's config."""
    cfg = store.config(run_id)
    path = store.path(run_id) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"Run {run_id} has no model.pt: it has not finished (state {store.status(run_id).get('state')})"
        )
    model = rebuild(read_checkpoint(path), cfg.model, cfg.data.image_size)
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return model.eval()


def feature_module(model: TransferNet, config: ModelConfig, cut: str | None = None) -> nn.Module:
    """The module of ``model`` (built for ``config``) whose output is the (B, C, h, w) map Grad-CAM
    reads at ``cut``.

    ``None`` is the map that feeds the head. Cuts above what the network keeps raise ValueError
    naming the layers there are; which module gives a cut's map is the backbone family's
    knowledge (:meth:`TransferNet.cam_module`: a ViT's patch tokens as a grid).
    """
    if cut is None:
        return model.last_conv_layer
    kept = registry.get_cut(config.backbone, get_strategy(config.strategy).kept_cut(config.cut))
    if registry.get_cut(config.backbone, cut).stage > kept.stage:
        raise ValueError(
            f"layer {cut!r} lies above what this network keeps (up to {kept.name!r}). "
            f"Grad-CAM layers: {', '.join(gradcam_layers(config))}"
        )
    return model.cam_module(cut)


def gradcam_layers(config: ModelConfig) -> list[str]:
    """The block-level cut points where Grad-CAM can be read for a network built for ``config``,
    bottom first, ending with the deepest kept point."""
    kept = registry.get_cut(config.backbone, get_strategy(config.strategy).kept_cut(config.cut))
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


def default_tolerance(size: int) -> int:
    """The pointing game's tolerance: 15 px at 224 px (Zhang et al., ECCV 2016), scaled to the image."""
    return max(1, round(15 / 224 * size))


def tolerance_region(mask: np.ndarray, tolerance: float) -> np.ndarray:
    """Pixels in the mask or closer to it than ``tolerance`` (Euclidean, strict as TorchRay's
    ``(dy**2 + dx**2) < tolerance**2``: 697 pixels around one pixel at 15 px)."""
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    return mask.astype(bool) | (distance_transform_edt(~mask.astype(bool)) < tolerance)


def cell_centres(map_size: tuple[int, int], image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image pixel (rows, columns) at the centre of each cell of a (h, w) map over an (H, W) image."""
    (h, w), (H, W) = map_size, image_size
    return ((np.arange(h) + 0.5) * H / h).astype(int), ((np.arange(w) + 0.5) * W / w).astype(int)


def pointing_game(maps: np.ndarray, masks: np.ndarray, tolerance: float | None = None) -> np.ndarray:
    """1 where the map's maximum lies in the mask's tolerance region (:func:`tolerance_region`,
    default :func:`default_tolerance`), else 0; an all-zero map points nowhere (a miss).

    Maps coarser than the masks (native Grad-CAM maps) point at the centre of their maximum cell.
    """
    tolerance = default_tolerance(masks.shape[-1]) if tolerance is None else tolerance
    rows, cols = cell_centres(maps.shape[-2:], masks.shape[-2:])
    hits = np.zeros(len(maps))
    for i, (m, k) in enumerate(zip(maps, masks, strict=True)):
        if m.max() <= 0:
            continue
        y, x = np.unravel_index(np.argmax(m), m.shape)
        hits[i] = float(tolerance_region(k, tolerance)[rows[y], cols[x]])
    return hits


def pointing_game_chance(
    masks: np.ndarray, tolerance: float | None = None, map_size: tuple[int, int] | None = None
) -> dict[str, np.ndarray]:
    """Per image, exactly: ``chance``, the hit rate of a uniform random map of ``map_size``
    (default: the masks' size), i.e. the share of its cell centres in the tolerance region; and
    ``ceiling``, 1 where some cell centre lies in it (0: no map of this resolution can hit)."""
    tolerance = default_tolerance(masks.shape[-1]) if tolerance is None else tolerance
    rows, cols = cell_centres(map_size or masks.shape[-2:], masks.shape[-2:])
    grid = [tolerance_region(k, tolerance)[np.ix_(rows, cols)] for k in masks]
    return {"chance": np.array([g.mean() for g in grid]), "ceiling": np.array([float(g.any()) for g in grid])}


def energy_in_mask(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's positive saliency inside its mask (0 for an all-zero map)."""
    m = np.clip(maps, 0, None)
    total = m.sum(axis=(1, 2))
    inside = (m * masks).sum(axis=(1, 2))
    return np.divide(inside, total, out=np.zeros_like(total), where=total > 0)


def energy_in_mask_chance(masks: np.ndarray) -> np.ndarray:
    """Per image, the expected energy-in-mask of a map with exchangeable values: the mask's area fraction."""
    return masks.reshape(len(masks), -1).mean(axis=1)


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


def overlay(
    image: np.ndarray, cam: np.ndarray, mask: np.ndarray | None = None, alpha: float = 0.45, cmap: str = "jet"
) -> np.ndarray:
    """RGB uint8: the grayscale image with the normalised map blended in colour where it is strong
    (the blend weight grows with the map, so the radiograph stays readable), optional mask outline (white)."""
    import matplotlib

    gray = image[0] if image.ndim == 3 else image
    base = np.repeat(gray[..., None].astype(np.float32) / 255, 3, -1)
    peak = cam.max()
    norm = cam / peak if peak > 0 else np.zeros_like(cam)
    heat = matplotlib.colormaps[cmap](norm)[..., :3]
    w = (alpha + (1 - alpha) * 0.4) * norm[..., None]
    rgb = (1 - w) * base + w * heat
    if mask is not None:
        rgb[outline(mask.astype(bool))] = 1.0
    return (rgb * 255 + 0.5).astype(np.uint8)


def to_png(rgb: np.ndarray, scale: int = 1) -> bytes:
    from PIL import Image

    im = Image.fromarray(rgb)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Explanation:
    indices: np.ndarray  # dataset indices of the images
    images: np.ndarray  # uint8 (n, C, H, W)
    maps: np.ndarray  # (n, H, W), upsampled to the images
    probs: np.ndarray  # predicted probability of the target
    labels: np.ndarray  # true target
    masks: np.ndarray | None  # (n, H, W) bool masks of the target finding, where known
    native: np.ndarray | None = None  # (n, h, w) the maps at the layer's own resolution
    layer: str | None = None  # the cut point the maps were read at

    @property
    def map_size(self) -> tuple[int, int]:
        """The maps' native resolution (h, w)."""
        return tuple((self.maps if self.native is None else self.native).shape[-2:])


def pick_images(
    data: ImageSet,
    predictions: dict | None,
    kind: str = "positives",
    n: int = 16,
    indices: list[int] | None = None,
    threshold: float = 0.5,
) -> np.ndarray:
    """Test images to explain: ``positives``, ``all``, ``TP``, ``FP``, ``TN``, ``FN`` (by the
    run's test predictions at ``threshold``), or explicit ``indices``."""
    if indices:
        bad = sorted(set(indices) - set(data.splits["test"].tolist()))
        if bad:
            raise ValueError(f"Image indices {bad[:5]} are not in the test split")
        return np.asarray(indices[:n])
    test = data.splits["test"]
    y = data.y(test)
    if kind == "all":
        return test[:n]
    if kind == "positives":
        return test[y > 0][:n]
    if predictions is None:
        raise ValueError(f"Filtering by {kind} needs the run's test predictions")
    order = np.argsort(predictions["index"])
    score = dict(zip(predictions["index"][order].tolist(), predictions["y_score"][order].tolist(), strict=True))
    pred = np.array([score.get(int(i), 0.0) >= threshold for i in test])
    want = {"TP": (y > 0) & pred, "FP": (y == 0) & pred, "TN": (y == 0) & ~pred, "FN": (y > 0) & ~pred}
    if kind not in want:
        raise ValueError(f"kind must be positives, all, TP, FP, TN or FN. Got {kind!r}")
    return test[want[kind]][:n]


def eval_copy(model: TransferNet) -> TransferNet:
    """``model`` itself when it is ready for Grad-CAM (eval mode, no in-place ReLU), else an
    eval-mode copy with out-of-place ReLUs: a training model is never put in eval mode or hooked."""
    if not model.training and not any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return model.eval()


def explain(
    model: TransferNet,
    data: ImageSet,
    indices: np.ndarray,
    layer: nn.Module | None = None,
    layer_name: str | None = None,
    reference: np.ndarray | None = None,
) -> Explanation:
    """Maps at ``layer`` (default: the map that feeds the head), less a ``reference`` map where
    given, probabilities and (where known) target masks for dataset images. A model in training
    mode is explained on an eval copy."""
    ready = eval_copy(model)
    if ready is not model and layer is not None:  # the same layer in the copy
        layer = ready.get_submodule(next(n for n, m in model.named_modules() if m is layer))
    model = ready
    indices = np.sort(indices)
    images = np.asarray(data.images[indices])
    x = torch.from_numpy(images).float() / 255
    with torch.no_grad():
        logits = model(x)
        probs = (torch.softmax(logits, dim=1) if data.exclusive else torch.sigmoid(logits))[:, 0].numpy()
    native = gradcam_native(model, x, layer, reference=reference)
    masks = data.masks(indices)
    target = data.target if data.target is not None else 0
    return Explanation(
        indices,
        images,
        upsample(native, tuple(x.shape[-2:])),
        probs,
        data.y(indices) if data.target is not None else data.labels[indices, 0],
        None if masks is None else masks[:, target],
        native,
        layer_name,
    )


def scores(e: Explanation, tolerance: float | None = None) -> dict[str, float]:
    """Pointing game (on the native maps) and energy-in-mask over images with a non-empty mask,
    each with its exact chance level, and the best pointing score a map of this resolution can reach."""
    if e.masks is None:
        return {"n": 0}
    keep = e.masks.reshape(len(e.masks), -1).any(axis=1)
    if not keep.any():
        return {"n": 0}
    native = (e.maps if e.native is None else e.native)[keep]
    masks = e.masks[keep]
    pg = pointing_game_chance(masks, tolerance, native.shape[-2:])
    em_chance = float(energy_in_mask_chance(masks).mean())
    return {
        "n": int(keep.sum()),
        "pointing_game": float(pointing_game(native, masks, tolerance).mean()),
        "pointing_game_chance": float(pg["chance"].mean()),
        "pointing_game_ceiling": float(pg["ceiling"].mean()),
        "energy_in_mask": float(energy_in_mask(e.maps[keep], masks).mean()),
        "energy_in_mask_chance": em_chance,
        # the names before the exact chance levels (then a Monte Carlo of random maps); kept for readers of old keys
        "pointing_game_random": float(pg["chance"].mean()),
        "energy_in_mask_random": em_chance,
    }


def negatives_reference(
    model: TransferNet, data: ImageSet, layer: nn.Module | None = None, n: int = 64
) -> np.ndarray | None:
    """:func:`reference_map` over up to ``n`` negative validation images (None when there are none)."""
    val = data.splits["val"]
    neg = np.sort(val[data.y(val) == 0][:n]) if data.target is not None else np.sort(val[:n])
    if neg.size == 0:
        return None
    return reference_map(model, torch.from_numpy(np.asarray(data.images[neg])).float() / 255, layer)


def run_explanation(
    store: RunStore, run_id: str, indices: np.ndarray | list[int], layer: str | None = None, contrast: bool = False
) -> Explanation:
    """Grad-CAM of a run at cut ``layer`` (default: the map that feeds the head) for dataset
    ``indices``, contrastive (less the mean map of negative validation images) where asked:
    everything the page needs, keyed by (run, images, layer, contrast) so it can be cached."""
    from medtl import data as D

    cfg = store.config(run_id)
    model = load_model(store, run_id)
    module = feature_module(model, cfg.model, layer)
    data = D.load(cfg.data)
    name = layer or get_strategy(cfg.model.strategy).kept_cut(cfg.model.cut)
    reference = negatives_reference(model, data, module) if contrast else None
    return explain(model, data, np.asarray(indices), module, name, reference)


def explain_run(
    store: RunStore,
    run_id: str,
    n: int = 16,
    out: str | Path | None = None,
    sanity: bool = True,
    layer: str | None = None,
    contrast: bool = False,
) -> dict:
    """Grad-CAM at cut ``layer`` for ``n`` positive test images of a run (contrastive where
    asked, see :func:`run_explanation`); scores, and overlay PNGs in ``out``."""
    from medtl import data as D

    data = D.load(store.config(run_id).data)
    picked = pick_images(data, store.predictions(run_id), "positives", n)
    e = run_explanation(store, run_id, picked, layer, contrast)
    model = load_model(store, run_id)
    module = feature_module(model, store.config(run_id).model, layer)
    result = {"run": run_id, "layer": e.layer, "map_size": list(e.map_size), "contrast": contrast, **scores(e)}
    if sanity:
        x = torch.from_numpy(e.images).float() / 255
        result["randomized_weights_rank_corr"] = randomization_check(model, x, e.maps, layer=module)
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for i, ix in enumerate(e.indices):
            rgb = overlay(e.images[i], e.maps[i], None if e.masks is None else e.masks[i])
            (folder / f"{run_id}_img{ix}_p{e.probs[i]:.2f}.png").write_bytes(
                to_png(rgb, scale=max(1, 128 // e.images.shape[-1]))
            )
        result["out"] = str(folder)
    return result
