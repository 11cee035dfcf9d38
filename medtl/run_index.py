"""The index of a runs folder: each run's config, status and metrics as last read, keyed by its files'
modification times and sizes, so that a reader re-reads only the folders that changed.

A cache beside the folders, never the truth: kept in memory per process (a long-lived app) and in
``<runs>/.index.json`` for finished and damaged runs (a new process, e.g. ``python -m medtl runs``, starts
from it); active runs change every second and are always read from their folders. The runs table's rows of
finished runs are kept the same way, as columns (:class:`Rows`, ``<runs>/.index-table.json``): a new process
draws a 10,000-run table without decoding and flattening 10,000 configs and metrics.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import zipfile
from pathlib import Path

from medtl.config import RunConfig
from medtl.run_files import DamagedRun, atomic_write, check_metrics, check_status, json_default, read_json
from medtl.states import FINISHED

INDEX = ".index.json"
TABLE = ".index-table.json"
INDEX_VERSION = 5
FILES = ("config.json", "status.json", "metrics.json", "predictions.npz")


class Entry:
    """What the index keeps of one run folder: its files' signature, what a listing needs at once (key,
    labels, state, problem), and the files' JSON text, decoded on first use (a 10,000-run index loads as
    text in a fraction of what decoding every config and metrics file would take)."""

    __slots__ = ("sig", "key", "experiment", "labels", "problem", "state", "brief", "_text", "_decoded")
    PARTS = ("config", "status", "metrics")

    def __init__(self, sig, key=None, experiment=None, labels=None, problem=None, state=None, brief=None, text=None):
        self.sig, self.key, self.experiment, self.labels = sig, key, experiment, labels
        self.problem, self.state = problem, state
        self.brief = brief or {}  # what a listing shows: name, error, warning, device, test AUROC/AUPRC
        self._text = text or {}
        self._decoded: dict = {}

    def _part(self, name: str):
        if name not in self._decoded:
            raw = self._text.get(name)
            self._decoded[name] = None if raw is None else json.loads(raw)
        return self._decoded[name]

    @property
    def config(self) -> dict | None:
        return self._part("config")

    @property
    def status(self) -> dict | None:
        return self._part("status")

    @property
    def metrics(self) -> dict | None:
        return self._part("metrics")

    def flat(self) -> dict:
        """The metrics as table columns (``test.auroc``, ``test.auroc_ci_lo``, ...), computed once."""
        if "flat" not in self._decoded:
            self._decoded["flat"] = flatten(self.metrics or {})
        return self._decoded["flat"]

    def row(self) -> dict:
        """The run's table columns that its files alone decide (keys, labels, config fields, metrics); the
        status columns (state, name, error) are the reader's (:meth:`medtl.runs.RunStore.table`)."""
        r = {"experiment": self.experiment, "key": self.key}
        r["data_label"], r["model_label"] = self.labels["data"], self.labels["model"]
        for part in ("data", "model", "train"):
            for k, v in self.config[part].items():
                r[f"{part}.{k}"] = v
        r.update(self.flat())
        return r

    def stable(self) -> bool:
        """Worth keeping in the index file: finished or damaged (active runs change all the time)."""
        return self.problem is not None or self.state in FINISHED

    def dump(self) -> dict:
        return {
            "sig": self.sig,
            "key": self.key,
            "experiment": self.experiment,
            "labels": self.labels,
            "problem": self.problem,
            "state": self.state,
            "brief": self.brief,
            "text": self._text,
        }


_NUMBER = (int, float)


def flatten(d: dict, prefix: str = "", out: dict | None = None) -> dict:
    """Nested sections as dotted columns; a pair of numbers (an interval) as ``_lo``/``_hi`` (run for every
    run of a 10,000-run table: kept to plain loops and type checks)."""
    out = {} if out is None else out
    for k, v in d.items():
        key = prefix + k
        t = type(v)
        if t is dict:
            flatten(v, key + ".", out)
        elif (t is list or t is tuple) and len(v) == 2 and type(v[0]) in _NUMBER and type(v[1]) in _NUMBER:
            out[key + "_lo"], out[key + "_hi"] = v
        else:
            out[key] = v
    return out


# one in-process cache per runs folder: a long-lived app re-reads only what changed
CACHES: dict[str, dict[str, Entry]] = {}
CACHE_LOCK = threading.Lock()


def signature(p: Path | str) -> list:
    """Modification time and size of each of the run's FILES (None where absent): what says it changed."""
    sig = []
    base = os.fspath(p) + os.sep  # plain strings: 30,000 stats of a 10,000-run folder in a tenth of a second
    for name in FILES:
        try:
            st = os.stat(base + name)
            sig.append([st.st_mtime_ns, st.st_size])
        except (FileNotFoundError, NotADirectoryError):
            sig.append(None)
    return sig


def read_entry(p: Path, run_id: str, sig: list) -> Entry:
    """Read and check one run folder's config, status and metrics; a problem makes it damaged."""
    e = Entry(sig)
    text: dict[str, str] = {}
    try:
        raw = read_json(p / "config.json", run_id)
        if raw is None:
            raise DamagedRun(run_id, "config.json", "missing")
        try:
            cfg = RunConfig.from_dict(raw)
        except (ValueError, TypeError) as err:
            raise DamagedRun(run_id, "config.json", f"not a run config ({err})") from None
        e.key, e.experiment = cfg.key(), cfg.experiment_key()
        e.labels = {"name": cfg.name, "data": cfg.data.label, "model": cfg.model.label}
        text["config"] = json.dumps(cfg.to_dict(), separators=(",", ":"))
        st = read_json(p / "status.json", run_id)
        if st is None:
            raise DamagedRun(run_id, "status.json", "missing")
        check_status(st, run_id)
        e.state = st["state"]
        text["status"] = json.dumps(st, separators=(",", ":"), default=json_default)
        m = read_json(p / "metrics.json", run_id)
        if m is not None:
            check_metrics(m, run_id)
            text["metrics"] = json.dumps(m, separators=(",", ":"), default=json_default)
        if sig[FILES.index("predictions.npz")] is not None and not zipfile.is_zipfile(p / "predictions.npz"):
            # one look at its end (the zip directory): a truncated file is damaged here, not in a figure later
            raise DamagedRun(run_id, "predictions.npz", "not a readable .npz (truncated, or not a zip file)")
        t = (m or {}).get("test", {})
        e.brief = {
            "name": st.get("name") or cfg.name,
            "created": st.get("created"),
            "error": st.get("error"),
            "warning": st.get("warning"),
            # where it trained: the queue's worker, else the trainer's record
            "device": st.get("worker") or st.get("device") or (m or {}).get("train", {}).get("device"),
            "auroc": t.get("auroc"),
            "auprc": t.get("auprc"),
        }
        # what was just parsed, kept: the table's rows are made from it at once (no second decode)
        e._decoded.update(config=json.loads(text["config"]), status=st, metrics=m)
    except DamagedRun as err:
        e.problem = str(err)
    e._text = text
    return e


def load_index(root: Path) -> dict[str, Entry]:
    try:
        d = json.loads((root / INDEX).read_text())
        if d.get("version") != INDEX_VERSION:
            return {}
        return {r: Entry(**v) for r, v in d["entries"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}  # absent or unreadable: a cache, rebuilt from the folders


def save_index(root: Path, entries: dict[str, Entry]) -> None:
    """Keep the finished runs' entries (active ones change every second and are re-read anyway)."""
    body = {"version": INDEX_VERSION, "entries": {r: e.dump() for r, e in entries.items() if e.stable()}}
    with contextlib.suppress(OSError):  # a read-only or full folder: the index is only a cache
        atomic_write(root / INDEX, json.dumps(body, separators=(",", ":")))


class Rows:
    """The runs table's rows of finished runs as one frame, with each run's files' signature when its row was
    made: a row whose run's files have not changed since is taken as it is. Kept per folder in memory and in
    :data:`TABLE` (columns as JSON lists: a 10,000-run table loads in a fraction of a second)."""

    def __init__(self, ids: list[str], sigs: list, frame):
        self.ids, self.sigs, self.frame = ids, sigs, frame
        self.at = {r: i for i, r in enumerate(ids)}

    def position(self, run_id: str, sig: list) -> int | None:
        """Where the run's row is, if it was made from the files the run has now."""
        i = self.at.get(run_id)
        return i if i is not None and self.sigs[i] == sig else None


ROWS: dict[str, Rows] = {}  # runs folder -> the last table's rows of finished runs


def load_rows(root: Path) -> Rows | None:
    with CACHE_LOCK:
        rows = ROWS.get(str(root))
    if rows is not None:
        return rows
    import pandas as pd

    try:
        d = json.loads((root / TABLE).read_text())
        if d.get("version") != INDEX_VERSION or not all(len(c) == len(d["ids"]) for c in d["columns"].values()):
            return None
        rows = Rows(d["ids"], d["sigs"], pd.DataFrame(d["columns"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # absent or unreadable: a cache, rebuilt from the entries
    with CACHE_LOCK:
        ROWS[str(root)] = rows
    return rows


def save_rows(root: Path, rows: Rows) -> None:
    with CACHE_LOCK:
        ROWS[str(root)] = rows
    cols = {c: rows.frame[c].tolist() for c in rows.frame.columns}
    body = {"version": INDEX_VERSION, "ids": rows.ids, "sigs": rows.sigs, "columns": cols}
    with contextlib.suppress(OSError, ValueError, TypeError):  # read-only or full folder: only a cache
        atomic_write(root / TABLE, json.dumps(body, separators=(",", ":"), default=json_default))
