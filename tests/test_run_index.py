"""The runs table's cached rows (``<runs>/.index-table.json``): a table drawn from them is the table made from
the run folders, and a run that changed, appeared, vanished or is active is made afresh."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from medtl import run_index as I
from medtl import runs as R
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.runs import RunStore


def _run(store: RunStore, seed: int, cut: str = "layer1", state: str = "done") -> str:
    cfg = RunConfig(DataConfig(n_images=200, image_size=32, seed=seed), ModelConfig(cut=cut), TrainConfig(seed=seed))
    run_id = store.create(cfg, state=state)
    if state == "done":
        auroc = 0.6 + 0.01 * seed
        store.write_metrics(run_id, {"test": {"auroc": auroc, "auprc": 0.3, "auroc_ci": [auroc - 0.1, auroc + 0.1]}})
    return run_id


def _fresh(root) -> pd.DataFrame:
    """The table made from the folders alone: no cached rows, in memory or on disk."""
    I.ROWS.clear()
    I.CACHES.clear()
    R._SNAPSHOT.clear()
    (root / I.TABLE).unlink(missing_ok=True)
    return RunStore(root).table()


def _cached(root) -> pd.DataFrame:
    """The table of a new process: the index and the cached rows from their files."""
    I.ROWS.clear()
    I.CACHES.clear()
    R._SNAPSHOT.clear()
    return RunStore(root).table()


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a["id"]) == list(b["id"])
    assert set(a.columns) == set(b.columns)
    pd.testing.assert_frame_equal(a, b[list(a.columns)], check_dtype=False)


def test_cached_rows_give_the_table_the_folders_give(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "RECHECK_S", 0.0)
    monkeypatch.setattr(R, "FRESH_S", 0.0)
    store = RunStore(tmp_path / "runs")
    ids = [_run(store, s, cut) for s in range(3) for cut in ("layer1", "layer2")]
    made = _fresh(store.root)
    assert (store.root / I.TABLE).is_file()
    on_disk = json.loads((store.root / I.TABLE).read_text())
    assert on_disk["ids"] == ids
    _same(made, _cached(store.root))  # a new process draws the same table from the cached rows

    # a run rewritten, a new one, one deleted, one active: made afresh, in the folders' order
    store.write_metrics(ids[1], {"test": {"auroc": 0.99, "auprc": 0.9, "auroc_ci": [0.98, 1.0]}})
    store.delete(ids[2])
    new = _run(store, 7)
    active = _run(store, 8, state="queued")
    cached = _cached(store.root)
    _same(_fresh(store.root), cached)
    row = cached.set_index("id")
    assert row.loc[ids[1], "test.auroc"] == 0.99 and row.loc[ids[1], "test.auroc_ci_hi"] == 1.0
    assert ids[2] not in row.index and row.loc[new, "state"] == "done" and row.loc[active, "state"] == "queued"
    assert np.isnan(row.loc[active, "test.auroc"])
    # the next table keeps the finished runs' rows, not the active one's
    assert json.loads((store.root / I.TABLE).read_text())["ids"] == [i for i in ids if i != ids[2]] + [new]


def test_a_damaged_table_file_is_rebuilt_not_believed(tmp_path):
    store = RunStore(tmp_path / "runs")
    ids = [_run(store, s) for s in range(2)]
    made = _fresh(store.root)
    (store.root / I.TABLE).write_bytes(b"\xf1 not json")
    _same(made, _cached(store.root))
    body = json.loads((store.root / I.TABLE).read_text())
    assert body["ids"] == ids
    body["columns"]["test.auroc"] = [0.5]  # a column of the wrong length
    (store.root / I.TABLE).write_text(json.dumps(body))
    _same(made, _cached(store.root))


def test_a_reader_that_updates_the_index_makes_the_rows_too(tmp_path):
    # a CLI listing (or a sweep) reads a folder first: the page that opens it next finds the rows made
    store = RunStore(tmp_path / "runs")
    ids = [_run(store, s) for s in range(3)]
    made = _fresh(store.root)
    for name in (I.INDEX, I.TABLE):
        (store.root / name).unlink()
    I.ROWS.clear()
    I.CACHES.clear()
    R._SNAPSHOT.clear()
    assert [r["id"] for r in RunStore(store.root).summaries()] == ids  # what `runs --json` reads
    assert json.loads((store.root / I.TABLE).read_text())["ids"] == ids
    _same(made, _cached(store.root))
