"""Grad-CAM explanations and CKA similarities of runs, cached for the Explain page.

Each entry is keyed by (runs folder, run id, the mtime of its ``model.pt``, images, layer,
contrast): a rerun of the page (any widget change) answers from the cache, and a run trained
again (a new ``model.pt``) is recomputed.
"""

from __future__ import annotations

import streamlit as st

from medtl import explain, similarity
from medtl.runs import RunStore

COARSE_CEILING = 0.5  # below this share of lesions within reach of a cell centre, a map is too coarse to point


def model_mtime(store: RunStore, run_id: str) -> float:
    """The modification time of a run's ``model.pt`` (part of every cache key)."""
    return (store.path(run_id) / "model.pt").stat().st_mtime


def explanation(
    store: RunStore, run_id: str, indices: list[int], layer: str | None, contrast: bool
) -> explain.Explanation:
    """:func:`medtl.explain.run_explanation`, cached."""
    return _explanation(str(store.root), run_id, model_mtime(store, run_id), tuple(indices), layer, contrast)


@st.cache_data(show_spinner=False, max_entries=64)
def _explanation(
    root: str, run_id: str, mtime: float, indices: tuple[int, ...], layer: str | None, contrast: bool
) -> explain.Explanation:
    return explain.run_explanation(RunStore(root), run_id, list(indices), layer, contrast)


def scores(store: RunStore, run_id: str, indices: list[int], layer: str | None, contrast: bool) -> dict:
    """:func:`medtl.explain.scores` of the cached explanation, cached as well."""
    return _scores(str(store.root), run_id, model_mtime(store, run_id), tuple(indices), layer, contrast)


@st.cache_data(show_spinner=False, max_entries=64)
def _scores(root: str, run_id: str, mtime: float, indices: tuple[int, ...], layer: str | None, contrast: bool) -> dict:
    return explain.scores(_explanation(root, run_id, mtime, indices, layer, contrast))


def too_coarse(s: dict) -> bool:
    """Whether a map cannot point at these lesions: few of them (under :data:`COARSE_CEILING`)
    have a cell centre within the tolerance, or its best possible score is within 2x chance."""
    if not s.get("n"):
        return False
    return s["pointing_game_ceiling"] < COARSE_CEILING or s["pointing_game_ceiling"] < 2 * s["pointing_game_chance"]


def run_similarity(store: RunStore, run_id: str, n: int = 256) -> dict:
    """:func:`medtl.similarity.run_similarity` on the first ``n`` test images, cached."""
    return _similarity(str(store.root), run_id, model_mtime(store, run_id), n)


@st.cache_data(show_spinner=False, max_entries=32)
def _similarity(root: str, run_id: str, mtime: float, n: int) -> dict:
    return similarity.run_similarity(RunStore(root), run_id, n=n)
