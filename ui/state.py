"""Process-wide resources and cached lookups for the pages."""

from __future__ import annotations

import json

import streamlit as st

from medtl.jobs import JobQueue
from medtl.runs import RunStore


def get_queue() -> JobQueue:
    """The job queue of this process for the current runs folder: one worker per device (``$MEDTL_DEVICES``)."""
    return _queue_for(str(RunStore().root))


@st.cache_resource(show_spinner=False)
def _queue_for(root: str) -> JobQueue:
    from medtl import study

    q = JobQueue(RunStore(root))  # start-up recovery of orphaned runs happens here, once per folder
    # after every run, queue what started studies need next (stage 2 of a search), with no page open
    q.on_finished = lambda _run_id: study.advance(q.store, q.submit)
    study.advance(q.store, q.submit)  # a stage that became due while the app was stopped
    return q


def get_store() -> RunStore:
    return get_queue().store


@st.cache_data(show_spinner=False)
def cut_table(backbone: str, image_size: int) -> list[dict]:
    from medtl.models.profile import cut_table as table

    return table(backbone, image_size)


@st.cache_data(show_spinner="Loading the dataset (cached after the first time)…", max_entries=16)
def data_summary(data_json: str) -> dict:
    """Split counts of a DataConfig (as JSON, so it hashes); raises the library's clear errors."""
    from medtl.data import data_warnings

    ds = load_data(data_json)
    return {
        "warnings": data_warnings(ds),
        "counts": ds.counts(),
        "target": ds.target_name,
        "labels": list(ds.label_names),
        "channels": ds.channels,
        "info": {k: v for k, v in ds.info.items() if isinstance(v, str | int | float)},
    }


@st.cache_data(show_spinner="Reading the dataset's labels…", max_entries=32, ttl=30)
def data_targets(data_json: str) -> tuple[list, str | None]:
    """The targets a dataset offers with their counts, and its default (:func:`medtl.data.targets`);
    kept 30 s, so files added to a folder show up."""
    from medtl import data as D
    from medtl.config import DataConfig

    return D.targets(DataConfig.from_dict(json.loads(data_json)))


@st.cache_data(show_spinner=False, max_entries=16)
def preview_png(data_json: str, n: int = 8, cols: int | None = None, px: int = 96) -> bytes:
    """A contact sheet of ``n`` test images, ``cols`` per row, each shown at about ``px`` pixels."""
    import io

    from medtl.data.preview import contact_sheet

    ds = load_data(data_json)
    buf = io.BytesIO()
    contact_sheet(ds, n=n, cols=cols or n, scale=max(1, px // ds.image_size)).save(buf, format="PNG")
    return buf.getvalue()


def weights_label(backbone: str) -> str:
    from medtl.models.weights import weights_status

    st_ = weights_status(backbone)
    if st_["file"] is None:
        return "imagenet (none exist for this backbone)"
    return "imagenet ✓ cached" if st_["available"] else "imagenet ✗ not downloaded"


@st.cache_resource(max_entries=8, show_spinner=False)
def load_data(data_json: str):
    from medtl import data as D
    from medtl.config import DataConfig

    return D.load(DataConfig.from_dict(json.loads(data_json)))


def runs_table(store: RunStore):
    """The store's runs table, rebuilt only when a run's files or state change (:meth:`RunStore.signature`):
    a widget change on a page of 10,000 runs does not re-read them. Shared between sessions: read it, filter it
    into new frames, never change it in place."""
    return _table_for(str(store.root), store.signature())


@st.cache_resource(max_entries=4, show_spinner="Reading the runs…")
def _table_for(root: str, signature: int):
    return RunStore(root).table()


def pooled_interval(ids: tuple[str, ...], root: str, metric: str, rule: str | None, prevalence: float | None):
    """:func:`medtl.compare.pooled_interval` of the repeats ``ids``, cached by the ids, their predictions files'
    times (``runs reevaluate`` rewrites them), the metric, the rule and the prevalence."""
    store = RunStore(root)
    stamps = predictions_stamps(store, ids)
    return _pooled(digest(ids, stamps, metric, rule, prevalence), ids, root, metric, rule, prevalence)


def _mtime(p) -> float:
    try:
        return p.stat().st_mtime_ns
    except OSError:
        return -1


def digest(*parts) -> str:
    """A short key for long tuples (Streamlit's cache hashes every element of an argument; this is one string)."""
    import hashlib

    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


@st.cache_data(max_entries=20_000, show_spinner=False)
def _pooled(key: str, _ids: tuple[str, ...], root: str, metric: str, rule, prevalence):
    from medtl import compare

    return compare.pooled_interval(_ids, RunStore(root).predictions, metric, rule=rule, prevalence=prevalence)


def truncation_summary(
    store: RunStore,
    runs,
    metric: str,
    secondary: str,
    max_lines: int,
    intervals: bool = True,
    rule: str | None = None,
    prevalence: float | None = None,
):
    """:func:`medtl.compare.truncation_summary` of ``runs`` (rows of :func:`runs_table` with their columns at
    ``rule`` and ``prevalence``), cached by the runs' ids, the folder's signature, the rule and the prevalence
    (which fix those rows), with the pooled intervals cached per experiment; ``intervals=False``: no pooled
    intervals for repeated experiments (no prediction file read)."""
    key = digest(store.signature(), tuple(runs["id"]), rule, prevalence)
    out = _summary(key, runs, str(store.root), metric, secondary, max_lines, intervals, rule, prevalence)
    out.attrs["key"] = (key, metric, secondary, max_lines, intervals)  # what it shows: a figure's cache key
    return out


@st.cache_data(max_entries=64, show_spinner="Summarising the runs by truncation depth…")
def _summary(
    key: str, _runs, root: str, metric: str, secondary: str, max_lines: int, intervals: bool, rule, prevalence
):
    from medtl import compare

    pooled = (lambda ids: pooled_interval(ids, root, metric, rule, prevalence)) if intervals else None
    return compare.truncation_summary(
        _runs, metric, secondary, max_lines=max_lines, pooled=pooled, rule=rule, prevalence=prevalence
    )


def figure(key: tuple, build):
    """The figure ``build()`` makes, built once per ``key`` (everything it shows: ids, file times, settings) and
    shared between reruns and sessions. Building a Plotly figure validates every property it is given — on the
    Compare page of 10,000 runs the six figures were half of a rerun. Never change the figure returned."""
    return _figure(digest(key), build)


@st.cache_resource(max_entries=128, show_spinner=False)
def _figure(key: str, _build):
    return _build()


def predictions_stamps(store: RunStore, ids) -> tuple:
    """The predictions files' times of runs ``ids`` (``runs reevaluate`` rewrites them): part of a figure's key."""
    return tuple(_mtime(store.path(i) / "predictions.npz") for i in ids)
