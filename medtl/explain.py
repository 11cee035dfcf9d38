"""Grad-CAM on trained runs, overlays, and checks of where the maps point.

Maps are computed with Captum's ``LayerGradCam`` (``relu_attributions=True``) at the last layer
of the (possibly truncated) backbone, upsampled bilinearly to the image. They always run on a
fresh eval-mode model loaded from the run's ``model.pt`` with in-place ReLUs made out-of-place
(backward hooks and in-place ops do not mix), never on a training model, and not under
``torch.inference_mode`` (gradients are needed).

Where lesion masks exist (SynthCXR) two scores say whether a map looks at the lesion:
the *pointing game* (the map's maximum lies in the mask, within 15 px at 224 px as in Zhang et
al. 2016, scaled to the image) and
*energy-in-mask* (the share of positive saliency inside the mask); both are also played by
uniform random maps as the chance level. The randomised-weights check (Adebayo et al., 2018)
recomputes maps with re-initialised weights: a faithful map must change.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from scipy.ndimage import binary_dilation
from torch import nn

from medtl.checkpoint import MODEL_FILE, rebuild
from medtl.checkpoint import read as read_checkpoint
from medtl.data import ImageSet
from medtl.data.preview import outline
from medtl.models.transfer import TransferNet
from medtl.runs import RunStore


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


def gradcam(
    model: TransferNet, images: torch.Tensor, layer: nn.Module | None = None, target: int = 0, batch_size: int = 32
) -> np.ndarray:
    """Grad-CAM maps (B, H, W), non-negative, for float images (B, C, H, W) in [0, 1]."""
    layer = layer or model.last_conv_layer
    cam = LayerGradCam(model, layer)
    out = []
    for s in range(0, len(images), batch_size):
        x = images[s : s + batch_size].detach().clone().requires_grad_(True)
        attr = cam.attribute(x, target=target, relu_attributions=True)
        attr = LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), interpolate_mode="bilinear")
        out.append(attr.detach()[:, 0].clamp(min=0).numpy())
    return np.concatenate(out)


def default_tolerance(size: int) -> int:
    """The pointing game's tolerance: 15 px at 224 px (Zhang et al., ECCV 2016), scaled to the image."""
    return max(1, round(15 / 224 * size))


def pointing_game(maps: np.ndarray, masks: np.ndarray, tolerance: int | None = None) -> np.ndarray:
    """1 where the map's maximum lies in the mask dilated by ``tolerance`` pixels (default:
    :func:`default_tolerance`), else 0 (an all-zero map points nowhere: a miss)."""
    tolerance = default_tolerance(masks.shape[-1]) if tolerance is None else tolerance
    hits = np.zeros(len(maps))
    for i, (m, k) in enumerate(zip(maps, masks, strict=True)):
        if m.max() <= 0:
            continue
        y, x = np.unravel_index(np.argmax(m), m.shape)
        region = binary_dilation(k, iterations=tolerance) if tolerance else k
        hits[i] = float(region[y, x])
    return hits


def energy_in_mask(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's positive saliency inside its mask (0 for an all-zero map)."""
    m = np.clip(maps, 0, None)
    total = m.sum(axis=(1, 2))
    inside = (m * masks).sum(axis=(1, 2))
    return np.divide(inside, total, out=np.zeros_like(total), where=total > 0)


def random_baseline(
    masks: np.ndarray, tolerance: int | None = None, draws: int = 20, seed: int = 0
) -> dict[str, float]:
    """The same games played by uniform random maps: the chance level for these masks."""
    rng = np.random.default_rng(seed)
    pg, em = [], []
    for _ in range(draws):
        maps = rng.random(masks.shape)
        pg.append(pointing_game(maps, masks, tolerance).mean())
        em.append(energy_in_mask(maps, masks).mean())
    return {"pointing_game": float(np.mean(pg)), "energy_in_mask": float(np.mean(em))}


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


def randomization_check(model: TransferNet, images: torch.Tensor, maps: np.ndarray, seed: int = 1) -> float:
    """Mean Spearman rank correlation between the maps and those of the same network with
    re-initialised weights (Adebayo et al. 2018): near 1 means the maps ignore the weights."""
    from scipy.stats import spearmanr

    rmaps = gradcam(randomized_copy(model, seed), images)
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
    maps: np.ndarray  # (n, H, W)
    probs: np.ndarray  # predicted probability of the target
    labels: np.ndarray  # true target
    masks: np.ndarray | None  # (n, H, W) bool masks of the target finding, where known


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


def explain(model: TransferNet, data: ImageSet, indices: np.ndarray) -> Explanation:
    """Maps, probabilities and (where known) target masks for dataset images."""
    images = np.asarray(data.images[np.sort(indices)])
    indices = np.sort(indices)
    x = torch.from_numpy(images).float() / 255
    with torch.no_grad():
        logits = model(x)
        probs = (torch.softmax(logits, dim=1) if data.exclusive else torch.sigmoid(logits))[:, 0].numpy()
    maps = gradcam(model, x)
    masks = data.masks(indices)
    target = data.target if data.target is not None else 0
    return Explanation(
        indices,
        images,
        maps,
        probs,
        data.y(indices) if data.target is not None else data.labels[indices, 0],
        None if masks is None else masks[:, target],
    )


def scores(e: Explanation, tolerance: int | None = None) -> dict[str, float]:
    """Pointing game and energy-in-mask over images with a non-empty mask, with the random-map chance level."""
    if e.masks is None:
        return {"n": 0}
    keep = e.masks.reshape(len(e.masks), -1).any(axis=1)
    if not keep.any():
        return {"n": 0}
    maps, masks = e.maps[keep], e.masks[keep]
    chance = random_baseline(masks, tolerance)
    return {
        "n": int(keep.sum()),
        "pointing_game": float(pointing_game(maps, masks, tolerance).mean()),
        "pointing_game_random": chance["pointing_game"],
        "energy_in_mask": float(energy_in_mask(maps, masks).mean()),
        "energy_in_mask_random": chance["energy_in_mask"],
    }


def explain_run(store: RunStore, run_id: str, n: int = 16, out: str | Path | None = None, sanity: bool = True) -> dict:
    """Grad-CAM for ``n`` positive test images of a run; scores, and overlay PNGs in ``out``."""
    from medtl import data as D

    model = load_model(store, run_id)
    data = D.load(store.config(run_id).data)
    e = explain(model, data, pick_images(data, store.predictions(run_id), "positives", n))
    result = {"run": run_id, **scores(e)}
    if sanity:
        x = torch.from_numpy(e.images).float() / 255
        result["randomized_weights_rank_corr"] = randomization_check(model, x, e.maps)
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
