"""The index of a runs folder: each run's config, status and metrics as last read, keyed by its files'
modification times and sizes, so that a reader re-reads only the folders that changed.

A cache beside the folders, never the truth: kept in memory per process (a long-lived app) and in
``<runs>/.index.json`` for finished and damaged runs (a new process, e.g. ``python -m medtl runs``, starts
from it); active runs change every second and are always read from their folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from medtl.config import RunConfig
from medtl.run_files import DamagedRun, atomic_write, check_metrics, check_status, json_default, read_json

FINISHED = ("done", "failed", "cancelled", "interrupted")
INDEX = ".index.json"
INDEX_VERSION = 1
FILES = ("config.json", "status.json", "metrics.json")


@dataclass
class Entry:
    """What the index keeps of one run folder: its files' signature, and their contents as read."""

    sig: list
    config: dict | None = None
    status: dict | None = None
    metrics: dict | None = None
    key: str | None = None
    experiment: str | None = None
    labels: dict | None = None
    problem: str | None = None

    def stable(self) -> bool:
        """Worth keeping in the index file: finished or damaged (active runs change all the time)."""
        return self.problem is not None or (self.status or {}).get("state") in FINISHED


# one in-process cache per runs folder: a long-lived app re-reads only what changed
CACHES: dict[str, dict[str, Entry]] = {}
CACHE_LOCK = threading.Lock()


def signature(p: Path) -> list:
    sig = []
    for name in FILES:
        try:
            st = os.stat(p / name)
            sig.append([st.st_mtime_ns, st.st_size])
        except (FileNotFoundError, NotADirectoryError):
            sig.append(None)
    return sig


def read_entry(p: Path, run_id: str, sig: list) -> Entry:
    """Read and check one run folder's config, status and metrics; a problem makes it damaged."""
    e = Entry(sig)
    try:
        raw = read_json(p / "config.json", run_id)
        if raw is None:
            raise DamagedRun(run_id, "config.json", "missing")
        try:
            cfg = RunConfig.from_dict(raw)
        except (ValueError, TypeError) as err:
            raise DamagedRun(run_id, "config.json", f"not a run config ({err})") from None
        e.config, e.key, e.experiment = cfg.to_dict(), cfg.key(), cfg.experiment_key()
        e.labels = {"name": cfg.name, "data": cfg.data.label, "model": cfg.model.label}
        st = read_json(p / "status.json", run_id)
        if st is None:
            raise DamagedRun(run_id, "status.json", "missing")
        e.status = check_status(st, run_id)
        m = read_json(p / "metrics.json", run_id)
        e.metrics = None if m is None else check_metrics(m, run_id)
    except DamagedRun as err:
        e.problem = str(err)
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
    body = {"version": INDEX_VERSION, "entries": {r: e.__dict__ for r, e in entries.items() if e.stable()}}
    with contextlib.suppress(OSError):  # a read-only or full folder: the index is only a cache
        atomic_write(root / INDEX, json.dumps(body, default=json_default, separators=(",", ":")))
