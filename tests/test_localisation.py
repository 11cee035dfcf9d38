"""Localisation scores (medtl/localisation.py): pointing game and energy-in-mask, their exact chance
levels and ceilings, checked against direct enumeration on small arrays."""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest

from medtl import localisation as L


@pytest.mark.slow
def test_the_module_imports_no_torch_and_no_run_store():
    code = "import sys, medtl.localisation; print([m for m in ('torch', 'captum', 'medtl.runs') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_scores_perfect_wrong_and_empty_maps():
    masks = np.zeros((4, 20, 20), bool)
    masks[:, 5:8, 5:8] = True
    perfect = masks.astype(float)
    assert L.pointing_game(perfect, masks, tolerance=0).mean() == 1
    assert L.energy_in_mask(perfect, masks).mean() == 1
    wrong = np.zeros((4, 20, 20))
    wrong[:, 15, 15] = 1
    assert L.pointing_game(wrong, masks, tolerance=2).mean() == 0
    zero = np.zeros((4, 20, 20))
    assert L.pointing_game(zero, masks).mean() == 0 and L.energy_in_mask(zero, masks).mean() == 0


def test_default_tolerance_is_15_px_at_224():
    assert L.default_tolerance(224) == 15 and L.default_tolerance(448) == 30
    assert L.default_tolerance(64) == 4 and L.default_tolerance(8) == 1  # never below one pixel


def test_tolerance_disc_is_torchrays():
    """One lesion pixel, 15 px: TorchRay's ``(dy**2 + dx**2) < 15**2`` accepts 697 pixels (an L1
    diamond, as binary_dilation gives, would accept 481)."""
    mask = np.zeros((64, 64), bool)
    mask[32, 32] = True
    assert L.tolerance_region(mask, 15).sum() == 697
    assert not L.tolerance_region(np.zeros((8, 8), bool), 3).any()  # no lesion: nowhere to point


def _region_by_enumeration(mask: np.ndarray, tol: float) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    out = np.zeros_like(mask)
    for y in range(mask.shape[0]):
        for x in range(mask.shape[1]):
            out[y, x] = mask[y, x] or bool(np.any((ys - y) ** 2 + (xs - x) ** 2 < tol**2))
    return out


def _random_masks(rng, n: int = 5, size: int = 24) -> np.ndarray:
    masks = np.zeros((n, size, size), bool)
    for k in masks:  # a blob and a stray pixel, anywhere (also at the border)
        y, x = rng.integers(0, size, 2)
        k[max(0, y - 2) : y + 2, max(0, x - 1) : x + 3] = True
        k[tuple(rng.integers(0, size, 2))] = True
    return masks


def _one_hot_hits(mask: np.ndarray, tol: float, map_size: tuple[int, int]) -> np.ndarray:
    """The pointing game of every map whose maximum is one cell (a uniform random map's argmax)."""
    h, w = map_size
    hits = np.zeros((h, w))
    for y, x in itertools.product(range(h), range(w)):
        m = np.zeros((1, h, w))
        m[0, y, x] = 1
        hits[y, x] = L.pointing_game(m, mask[None], tol)[0]
    return hits


def test_pointing_game_chance_matches_enumeration_at_full_resolution():
    masks = _random_masks(np.random.default_rng(0))
    tol = 3.5
    chance = L.pointing_game_chance(masks, tol)
    for k, c in zip(masks, chance, strict=True):
        region = _region_by_enumeration(k, tol)
        np.testing.assert_array_equal(L.tolerance_region(k, tol), region)
        assert c == pytest.approx(_one_hot_hits(k, tol, (24, 24)).mean()) == pytest.approx(region.mean())
    np.testing.assert_array_equal(L.pointing_game_ceiling(masks, tol), 1.0)  # every lesion is a pixel of the map


def test_coarse_map_chance_and_ceiling_match_enumeration_of_its_cells():
    """A coarse 4x6 map points at its cells' centres: chance is the mean hit over its cells, the
    ceiling the best of them, and the reachable cells are those whose centre lies in the region."""
    masks = _random_masks(np.random.default_rng(1))
    tol = 3.5
    reach = L.reachable_cells(masks, tol, (4, 6))
    chance, ceiling = L.pointing_game_chance(masks, tol, (4, 6)), L.pointing_game_ceiling(masks, tol, (4, 6))
    for k, r, c, ceil in zip(masks, reach, chance, ceiling, strict=True):
        hits = _one_hot_hits(k, tol, (4, 6))
        region = _region_by_enumeration(k, tol)
        for y, x in itertools.product(range(4), range(6)):  # cell (y, x) of 4x6 over 24 px: centre (6y+3, 4x+2)
            assert hits[y, x] == r[y, x] == region[6 * y + 3, 4 * x + 2]
        assert c == pytest.approx(hits.mean()) and ceil == hits.max()


def test_a_lesion_between_cell_centres_is_out_of_reach():
    """A 2x2 map over 24 px has cell centres at 6 and 18: a one-pixel lesion in a corner, 1 px of
    tolerance, cannot be hit by any map of that resolution (ceiling and chance 0), but by a full one."""
    mask = np.zeros((1, 24, 24), bool)
    mask[0, 0, 0] = True
    assert L.pointing_game_ceiling(mask, 1, (2, 2))[0] == 0 and L.pointing_game_chance(mask, 1, (2, 2))[0] == 0
    assert all(h == 0 for h in _one_hot_hits(mask[0], 1, (2, 2)).ravel())
    assert L.pointing_game_ceiling(mask, 1)[0] == 1 and L.pointing_game_chance(mask, 1)[0] == pytest.approx(1 / 576)


def test_energy_chance_is_exact_over_every_arrangement_of_the_values():
    """A map with exchangeable values: averaged over all 720 arrangements of six values on a 2x3
    map, the energy in the mask is exactly its area fraction."""
    masks = np.array([[[1, 0, 0], [0, 1, 1]], [[0, 0, 0], [0, 0, 1]], [[1, 1, 1], [1, 1, 1]]], bool)
    values = np.array([0.3, 1.0, 2.5, 0.01, 4.0, 0.7])
    maps = np.array([np.reshape(p, (2, 3)) for p in itertools.permutations(values)])
    for k, c in zip(masks, L.energy_in_mask_chance(masks), strict=True):
        share = L.energy_in_mask(maps, np.broadcast_to(k, maps.shape)).mean()
        assert share == pytest.approx(c) == pytest.approx(k.mean())


def test_energy_chance_holds_for_maps_upsampled_by_a_whole_factor():
    """Bilinear upsampling by a whole factor gives every cell the same total weight, so the chance
    level at the image's resolution holds for coarse maps upsampled to it (as scores does)."""
    from medtl.cam import upsample

    mask = np.zeros((8, 8), bool)
    mask[1:4, 2:7] = True
    values = np.array([0.2, 1.0, 3.0, 0.5])
    native = np.array([np.reshape(p, (2, 2)) for p in itertools.permutations(values)])
    up = upsample(native.astype(np.float32), (8, 8))
    share = L.energy_in_mask(up, np.broadcast_to(mask, up.shape)).mean()
    assert share == pytest.approx(L.energy_in_mask_chance(mask[None])[0], rel=1e-5)


def test_edge_cell_peak_points_at_the_cell_not_the_corner():
    """Upsampled bilinearly, a peak in a corner cell is a plateau up to the border whose first
    pixel is the image corner; the native map points at the cell's centre."""
    from medtl.cam import upsample

    native = np.zeros((1, 4, 4))
    native[0, 0, 0] = 1
    up = upsample(native, (64, 64))
    assert np.unravel_index(up[0].argmax(), (64, 64)) == (0, 0)
    mask = np.zeros((1, 64, 64), bool)
    mask[0, 6:10, 6:10] = True  # a lesion around the corner cell's centre (8, 8)
    assert L.pointing_game(up, mask, tolerance=4)[0] == 0
    assert L.pointing_game(native, mask, tolerance=4)[0] == 1


def test_lesion_diameter_is_the_median_equivalent_disc():
    masks = np.zeros((4, 32, 32), bool)
    masks[0, 2:6, 2:6] = True  # 16 px
    masks[1, 10:20, 10:20] = True  # 100 px
    yy, xx = np.mgrid[:32, :32]
    masks[2] = (yy - 16) ** 2 + (xx - 16) ** 2 <= 8**2  # a disc of radius 8: about 16 px across
    # masks[3] is empty: left out
    areas = sorted([16, 100, int(masks[2].sum())])
    assert L.lesion_diameter(masks) == pytest.approx(2 * math.sqrt(areas[1] / math.pi))
    assert L.lesion_diameter(masks[2:3]) == pytest.approx(16, abs=0.5)
    assert L.lesion_diameter(masks[:1]) == pytest.approx(8 / math.sqrt(math.pi))
    assert math.isnan(L.lesion_diameter(masks[3:]))
