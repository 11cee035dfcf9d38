"""Does a saliency map look at the lesion? Localisation scores of maps against masks, with their
exact chance levels and ceilings: pure functions of NumPy arrays (no torch, no run store).

The *pointing game* (Zhang et al., ECCV 2016; TorchRay's tolerance) counts a hit when the map's
maximum lies in the mask or closer to it than 15 px at 224 px (Euclidean), scaled to the image.
*Energy-in-mask* is the share of a map's positive saliency inside the mask.

The pointing game plays a map at its *native* resolution: the maximum cell is mapped to the
image pixel at its centre. Taking the argmax of a bilinearly upsampled map instead puts every
edge-cell peak on the image border (the upsampled map is flat between the outermost cell centre
and the border, and ``argmax`` returns the first pixel of that plateau: the top-left corner).

Both scores have an exact chance level in closed form: a uniform random map points at a
uniformly random cell of its grid, so its hit rate is the share of cells whose centre lies in the
tolerance region; its expected energy share is the mask's area fraction (exchangeable values,
and bilinear upsampling by a whole factor gives every cell the same total weight). A coarse map
cannot point closer than its cell centres, so the best pointing score a map of that resolution
can reach, its *ceiling*, is the share of masks with some cell centre in the tolerance region.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt


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


def reachable_cells(
    masks: np.ndarray, tolerance: float | None = None, map_size: tuple[int, int] | None = None
) -> np.ndarray:
    """(n, h, w) bool: the cells of a ``map_size`` map (default: the masks' size) whose centre lies
    in each mask's tolerance region, i.e. where a maximum scores a hit."""
    tolerance = default_tolerance(masks.shape[-1]) if tolerance is None else tolerance
    rows, cols = cell_centres(map_size or masks.shape[-2:], masks.shape[-2:])
    h, w = len(rows), len(cols)
    out = np.zeros((len(masks), h, w), dtype=bool)
    for i, k in enumerate(masks):
        out[i] = tolerance_region(k, tolerance)[np.ix_(rows, cols)]
    return out


def pointing_game_chance(
    masks: np.ndarray, tolerance: float | None = None, map_size: tuple[int, int] | None = None
) -> np.ndarray:
    """Per image, exactly: the hit rate of a uniform random map of ``map_size`` (default: the
    masks' size), i.e. the share of its cells in reach (:func:`reachable_cells`)."""
    return reachable_cells(masks, tolerance, map_size).mean(axis=(1, 2))


def pointing_game_ceiling(
    masks: np.ndarray, tolerance: float | None = None, map_size: tuple[int, int] | None = None
) -> np.ndarray:
    """Per image, the best pointing score a map of ``map_size`` can reach: 1 where some cell
    centre lies in the tolerance region, 0 where no map of this resolution can hit."""
    return reachable_cells(masks, tolerance, map_size).any(axis=(1, 2)).astype(float)


def energy_in_mask(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's positive saliency inside its mask (0 for an all-zero map)."""
    m = np.clip(maps, 0, None)
    total = m.sum(axis=(1, 2))
    inside = (m * masks).sum(axis=(1, 2))
    return np.divide(inside, total, out=np.zeros_like(total), where=total > 0)


def energy_in_mask_chance(masks: np.ndarray) -> np.ndarray:
    """Per image, the expected energy-in-mask of a map with exchangeable values: the mask's area fraction."""
    return masks.reshape(len(masks), -1).mean(axis=1)


def lesion_diameter(masks: np.ndarray) -> float:
    """The median lesion size in pixels over the non-empty masks, each as the diameter of the disc
    with its area (to compare with a map's cell size); NaN when every mask is empty."""
    area = masks.reshape(len(masks), -1).sum(axis=1)
    area = area[area > 0]
    return float(np.median(2 * np.sqrt(area / np.pi))) if area.size else float("nan")
