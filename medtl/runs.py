"""RunStore: one folder per run on disk, written atomically, readable by any process.

``runs/<id>/`` holds ``config.json``, ``status.json`` (state, progress, timestamps, error),
``history.jsonl`` (one line per epoch), ``metrics.json``, ``predictions.npz`` and ``model.pt``
(the selected checkpoint). States: queued, running, done, failed, cancelled, interrupted.
The default root is ``./runs``, overridden by ``$MEDTL_RUNS`` and by an explicit argument.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from medtl.config import RunConfig

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
FINISHED = ("done", "failed", "cancelled", "interrupted")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def atomic_write(path: Path, data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write via a temporary file in the same folder and ``os.replace``: readers never see half a file.

    ``data`` is the content, or a function that writes it to the open binary file (a serialiser
    such as ``torch.save``, so that a large object is not held twice in memory). A process killed
    mid-write leaves the previous file intact and a ``.<name>.*`` temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """The runs folder: create, update, list and read runs."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root or os.environ.get("MEDTL_RUNS") or "runs").expanduser().resolve()

    # --- paths and ids ----------------------------------------------------------------------------

    def path(self, run_id: str) -> Path:
        if not _ID_RE.match(run_id or ""):
            raise ValueError(f"Invalid run id {run_id!r}: ids are letters, digits, '-', '_' and '.'")
        return self.root / run_id

    def exists(self, run_id: str) -> bool:
        return (self.path(run_id) / "config.json").is_file()

    def _require(self, run_id: str) -> Path:
        p = self.path(run_id)
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"No run {run_id!r} in {self.root}")
        return p

    # --- writing ----------------------------------------------------------------------------------

    def create(self, cfg: RunConfig, state: str = "queued") -> str:
        """A new run folder with ``config.json`` and ``status.json``; returns its id.

        Raises:
            ValueError: a name the model registry does not know (backbone, cut, weights) or images
                too small for the network: nothing is recorded (:meth:`RunConfig.check`).
        """
        cfg.check()
        t = dt.datetime.now()
        run_id = f"{t:%Y%m%d-%H%M%S}-{t.microsecond // 1000:03d}{secrets.token_hex(2)}"  # sorts by creation time
        p = self.path(run_id)
        p.mkdir(parents=True, exist_ok=False)
        atomic_write(p / "config.json", cfg.to_json())
        self.write_status(
            run_id, state=state, name=cfg.name, key=cfg.key(), created=now(), pid=os.getpid(), host=socket.gethostname()
        )
        return run_id

    def write_status(self, run_id: str, **updates: Any) -> dict:
        """Merge ``updates`` into ``status.json`` (atomically) and return the result."""
        p = self.path(run_id) / "status.json"
        status = self._read_json(p) or {}
        status.update(updates)
        if "state" in updates and updates["state"] not in STATES:
            raise ValueError(f"state must be one of {STATES}. Got {updates['state']!r}")
        atomic_write(p, json.dumps(status, indent=1, default=_json_default))
        return status

    def append_history(self, run_id: str, record: dict) -> None:
        with open(self.path(run_id) / "history.jsonl", "a") as f:
            f.write(json.dumps(record, default=_json_default) + "\n")

    def truncate_history(self, run_id: str, epochs: int) -> None:
        """Keep the first ``epochs`` lines (a resumed run rewrites what followed its checkpoint)."""
        rows = self.history(run_id)[:epochs]
        atomic_write(self.path(run_id) / "history.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    def write_metrics(self, run_id: str, metrics: dict) -> None:
        atomic_write(self.path(run_id) / "metrics.json", json.dumps(metrics, indent=1, default=_json_default))

    def write_predictions(self, run_id: str, **arrays: np.ndarray) -> None:
        atomic_write(self.path(run_id) / "predictions.npz", lambda f: np.savez(f, **arrays))

    def save_checkpoint(self, run_id: str, name: str, obj: Any) -> Path:
        """Serialise ``obj`` with ``torch.save`` to ``<run>/<name>`` atomically: the one writer of
        checkpoint files, so a kill during a save never leaves a truncated ``model.pt``/``last.pt``."""
        import torch  # only the trainer writes checkpoints; reading runs needs no torch

        path = self.path(run_id) / name
        atomic_write(path, lambda f: torch.save(obj, f))
        return path

    def remove_partial_checkpoints(self, run_id: str) -> list[str]:
        """Delete the temporary files of checkpoint saves that a killed process left behind
        (``.<name>.pt.*``); returns their names."""
        gone = []
        for p in self.path(run_id).glob(".*.pt.*"):
            p.unlink(missing_ok=True)
            gone.append(p.name)
        return gone

    def delete(self, run_id: str) -> None:
        shutil.rmtree(self._require(run_id))

    # --- reading ----------------------------------------------------------------------------------

    @staticmethod
    def _read_json(p: Path) -> dict | None:
        try:
            return json.loads(p.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def config(self, run_id: str) -> RunConfig:
        return RunConfig.load(self._require(run_id) / "config.json")

    def status(self, run_id: str) -> dict:
        return self._read_json(self._require(run_id) / "status.json") or {
            "state": "failed",
            "error": "status.json unreadable",
        }

    def metrics(self, run_id: str) -> dict | None:
        return self._read_json(self._require(run_id) / "metrics.json")

    def history(self, run_id: str) -> list[dict]:
        p = self._require(run_id) / "history.jsonl"
        if not p.is_file():
            return []
        rows = []
        for line in p.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line being written right now
        return rows

    def predictions(self, run_id: str) -> dict[str, np.ndarray] | None:
        p = self._require(run_id) / "predictions.npz"
        if not p.is_file():
            return None
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def ids(self) -> list[str]:
        """Run ids, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if (d / "config.json").is_file())

    def experiments(self, states: tuple[str, ...] = ("done",)) -> dict[str, str]:
        """Experiment key (:meth:`RunConfig.key`) -> the newest run in one of ``states``.

        Keys are recomputed from each run's ``config.json``, so runs recorded before a change to
        what the key covers still match. One pass over the folder: build it once per sweep."""
        out: dict[str, str] = {}
        for run_id in self.ids():  # oldest first: a newer run of the same experiment overwrites
            st = self.status(run_id)
            if st.get("state") not in states:
                continue
            try:
                key = self.config(run_id).key()
            except (OSError, ValueError, TypeError, KeyError):
                key = st.get("key")
            out[key] = run_id
        return out

    def rekey(self) -> list[tuple[str, str | None, str]]:
        """Bring every run's ``status.json`` key (and name) up to the current definition of a key.

        Keys are always recomputed from ``config.json`` where runs are matched (:meth:`experiments`),
        so sweeps and studies find runs recorded under an older definition without this; it refreshes
        what ``status.json`` says for other readers. Idempotent: a second call changes nothing. The
        key a run had before is kept in ``keys_before``.

        Returns:
            ``(run id, old key, new key)`` for each run whose key changed.
        """
        changed = []
        for run_id in self.ids():
            try:
                cfg = self.config(run_id)
            except (OSError, ValueError, TypeError, KeyError):
                continue  # unreadable: listed as such elsewhere, never rewritten
            st = self._read_json(self.path(run_id) / "status.json") or {}
            old, new = st.get("key"), cfg.key()
            if old != new or st.get("name") != cfg.name:
                before = [*st.get("keys_before", []), old] if old != new and old else st.get("keys_before", [])
                self.write_status(run_id, key=new, name=cfg.name, keys_before=before)
                if old != new:
                    changed.append((run_id, old, new))
        return changed

    def orphans(self) -> list[str]:
        """Runs left ``running`` or ``queued`` by a process on this host that no longer exists."""
        host = socket.gethostname()
        out = []
        for run_id in self.ids():
            st = self.status(run_id)
            if st.get("state") in ("running", "queued") and st.get("host") == host and not pid_alive(st.get("pid")):
                out.append(run_id)
        return out

    def table(self):
        """A pandas DataFrame, one row per run: id, name, state, config fields, metrics."""
        import pandas as pd

        rows = []
        for run_id in self.ids():
            st = self.status(run_id)
            try:
                rc = self.config(run_id)
            except (ValueError, FileNotFoundError):
                continue  # a config written by an incompatible version
            cfg = rc.to_dict()
            row = {
                "id": run_id,
                "name": st.get("name"),
                "experiment": rc.experiment_key(),
                "data_label": rc.data.label,
                "model_label": rc.model.label,
                "state": st.get("state"),
                "created": st.get("created"),
                "error": st.get("error"),
                "warning": st.get("warning"),
            }
            for part in ("data", "model", "train"):
                row.update({f"{part}.{k}": v for k, v in cfg[part].items()})
            row.update(_flatten(self.metrics(run_id) or {}))
            rows.append(row)
        return pd.DataFrame(rows)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(x, int | float) for x in v):
            out[key + "_lo"], out[key + "_hi"] = v
        else:
            out[key] = v
    return out
