"""Grad-CAM on trained runs: load a run's model, pick test images, explain them, score the maps.

The thin orchestration that the Explain page and ``python -m medtl explain`` call. The maps
themselves are :mod:`medtl.cam` (Captum's Grad-CAM on a fresh eval-mode copy loaded from the
run's ``model.pt``, never the training model); the scores and their exact chance levels and
ceilings are :mod:`medtl.localisation` (pure array functions); overlays are :mod:`medtl.overlay`.

Where lesion masks exist (SynthCXR), :func:`scores` plays the pointing game on the maps at their
native resolution and measures energy-in-mask on the maps upsampled to the image.
*Contrastive* maps (``contrast=True``) subtract the mean signed map of negative validation images
(:func:`negatives_reference`) before the ReLU: with a GAP head the plain maps carry an offset that
is the same for every image (on SynthCXR the zero-padded border), which puts deep cuts' maxima on
the border; what remains points at the lesion (see :mod:`medtl.cam`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medtl import localisation as L
from medtl.cam import eval_copy, feature_module, gradcam_native, randomization_check, ready, reference_map, upsample
from medtl.checkpoint import MODEL_FILE
from medtl.checkpoint import read as read_checkpoint
from medtl.data import ImageSet
from medtl.models import rebuild
from medtl.models.transfer import TransferNet
from medtl.overlay import overlay, to_png
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
    return ready(rebuild(read_checkpoint(path), cfg.model, cfg.data.image_size))


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
    chance = float(L.pointing_game_chance(masks, tolerance, native.shape[-2:]).mean())
    em_chance = float(L.energy_in_mask_chance(masks).mean())
    return {
        "n": int(keep.sum()),
        "pointing_game": float(L.pointing_game(native, masks, tolerance).mean()),
        "pointing_game_chance": chance,
        "pointing_game_ceiling": float(L.pointing_game_ceiling(masks, tolerance, native.shape[-2:]).mean()),
        "energy_in_mask": float(L.energy_in_mask(e.maps[keep], masks).mean()),
        "energy_in_mask_chance": em_chance,
        # the names before the exact chance levels (then a Monte Carlo of random maps); kept for readers of old keys
        "pointing_game_random": chance,
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
    name = layer or cfg.model.kept_cut
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
