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
