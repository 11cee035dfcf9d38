"""RunStore: one folder per run on disk, shared by every process that writes or reads the runs folder.

``runs/<id>/`` holds ``config.json``, ``status.json`` (state, progress, timestamps, error),
``history.jsonl`` (one line per epoch), ``metrics.json``, ``predictions.npz`` and ``model.pt``
(the selected checkpoint). States: queued, running, done, failed, cancelled, interrupted; a reader also
reports a run as ``interrupted`` when its claim is dead (:mod:`medtl.claims`) and as ``damaged`` when a
file cannot be read (:mod:`medtl.run_files`) — one bad run never breaks the others.

Many writers share one folder (two sweeps, a SLURM array, the dashboard): every run is claimed by its
key before it trains (:meth:`RunStore.start`, :meth:`RunStore.create`), so each is trained once, and a
dead writer's run is resumed in its folder. The folders are the truth; an index of their summaries
(``.index.json``, refreshed from file times) only spares re-reading what did not change.
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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medtl.claims import Claims, pid_alive
from medtl.config import RunConfig
from medtl.run_files import (
    DamagedRun,
    StoreWriteError,
    atomic_write,
    check_checkpoint,
    json_default,
    read_history,
    read_json,
    read_predictions,
    write_error,
)
from medtl.run_index import CACHE_LOCK, CACHES, Entry, Rows, load_index, load_rows, read_entry, save_index, save_rows
from medtl.run_index import signature as file_signature
from medtl.states import ACTIVE, FINISHED, STATES, STOPPED, State

DAMAGED = State.DAMAGED  # a state readers report, never written
FRESH_S = 1.0  # how long one look at the folder serves further questions (see RunStore._entries)
# how often a finished (or damaged) run's files are looked at again: active runs and new or removed folders are
# seen at every look, a finished run changes only by ``runs reevaluate``/``--rekey`` or a hand edit
RECHECK_S = float(os.environ.get("MEDTL_RECHECK_S", "10"))
_CHECKED: dict[str, float] = {}  # runs folder -> when every run's files were last looked at
_TOUCHED: dict[str, set[str]] = {}  # runs folder -> runs this process wrote since the last look (seen at once)
# runs folder -> (the last look's entries, what was derived from them): a look that finds nothing changed returns
# the same dict, so what is derived from every entry (signature, duplicates, damaged) is computed once per change
_SNAPSHOT: dict[str, tuple[dict, dict]] = {}
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}")

__all__ = [
    "ACTIVE",
    "DAMAGED",
    "FINISHED",
    "STATES",
    "STOPPED",
    "Busy",
    "DamagedRun",
    "RunStore",
    "Start",
    "State",
    "StoreWriteError",
    "atomic_write",
    "now",
    "pid_alive",
]


def _checked(cfg: RunConfig) -> RunConfig:
    """:func:`medtl.models.registry.check_run`: the registry's names and sizes, checked before anything is
    recorded. Imported here, not at the top, for start-up time alone (the registry imports torch, 2-4 s, which
    ``python -m medtl runs`` never needs); no circle (``tests/test_imports.py``)."""
    from medtl.models.registry import check_run

    return check_run(cfg)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class Busy(ValueError):
    """Another live writer holds the claim on a run's key: it is being trained (or queued) elsewhere."""

    def __init__(self, holder: dict):
        self.holder = holder
        super().__init__(
            f"This run is already being trained (run {holder.get('run_id', '?')} on {holder.get('host', '?')}, "
            f"pid {holder.get('pid', '?')}): it is not trained twice"
        )


@dataclass(frozen=True)
class Start:
    """What :meth:`RunStore.start` decided: ``new`` (a folder created), ``resume`` (a dead writer's
    or an unfinished folder, to continue), ``done`` (already trained) or ``busy`` (a live writer has it)."""

    run_id: str | None
    action: str
    holder: dict | None = None


class RunStore:
    """The runs folder: create, claim, update, list and read runs."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root or os.environ.get("MEDTL_RUNS") or "runs").expanduser().resolve()
        self.claims = Claims(self.root)
        self._seen: tuple[float, dict[str, Entry]] | None = None  # the last look at the folder (see _entries)

    # --- paths and ids ----------------------------------------------------------------------------

    def path(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not _ID_RE.fullmatch(run_id):
            raise ValueError(f"Invalid run id {run_id!r}: ids are letters, digits, '-', '_' and '.'")
        return self.root / run_id

    def exists(self, run_id: str) -> bool:
        return (self.path(run_id) / "config.json").is_file()

    def _require(self, run_id: str) -> Path:
        p = self.path(run_id)
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"No run {run_id!r} in {self.root}")
        return p

    @staticmethod
    def new_id() -> str:
        t = dt.datetime.now()
        return f"{t:%Y%m%d-%H%M%S}-{t.microsecond // 1000:03d}{secrets.token_hex(2)}"  # sorts by creation time

    # --- claiming and creating --------------------------------------------------------------------

    def create(self, cfg: RunConfig, state: str = State.QUEUED, run_id: str | None = None) -> str:
        """A new run folder with ``config.json`` and ``status.json``, its key claimed; returns its id.

        Raises:
            ValueError: a name the model registry does not know (backbone, cut, weights) or images too
                small for the network: nothing is recorded (:func:`_checked`).
            Busy: another live writer holds this run's key.
        """
        _checked(cfg)
        run_id = run_id or self.new_id()
        claimed, holder = self.claims.acquire(cfg.key(), run_id)
        if not claimed:
            raise Busy(holder or {})
        try:
            self._write_new(cfg, run_id, state)
        except BaseException:
            self.claims.release(cfg.key(), run_id)
            raise
        return run_id

    def _write_new(self, cfg: RunConfig, run_id: str, state: str) -> None:
        p = self.path(run_id)
        try:
            p.mkdir(parents=True, exist_ok=False)
        except OSError as e:
            raise write_error(p, e) from None
        atomic_write(p / "config.json", cfg.to_json())
        self._wrote(run_id)
        self.write_status(
            run_id, state=state, name=cfg.name, key=cfg.key(), created=now(), pid=os.getpid(), host=socket.gethostname()
        )

    def start(self, cfg: RunConfig, state: str = State.QUEUED, done: dict[str, str] | None = None) -> Start:
        """Claim ``cfg``'s run and say what to do with it — the one entry for every writer (sweeps, studies,
        the job queue, cluster tasks): skip it when it is done or a live writer has it; resume a folder
        whose writer died (its claim dead, or an unfinished run of this key); else create a folder.

        Args:
            done: key -> done run (:meth:`experiments`), when the caller has it already.
        """
        _checked(cfg)
        key = cfg.key()
        done = self.experiments() if done is None else done
        if key in done:
            return Start(done[key], "done")
        run_id = self.new_id()
        claimed, found = self.claims.acquire(key, run_id)
        if not claimed:
            return Start((found or {}).get("run_id"), "busy", found)
        try:
            again = self._done_of(key)  # finished (and released) while we looked
            if again:
                self.claims.release(key, run_id)
                return Start(again, "done")
            old = (found or {}).get("run_id")
            old = old if old and self._unfinished(old) else self._resumable(key)
            if old:
                self.claims.move(key, old)
                self.write_status(old, state=state, pid=os.getpid(), host=socket.gethostname(), error=None)
                return Start(old, "resume", found)
            self._write_new(cfg, run_id, state)
        except BaseException:
            self.claims.release(key, run_id)
            raise
        return Start(run_id, "new")

    def _done_of(self, key: str) -> str | None:
        """The newest done run of ``key``, looking again at the folders that may hold it (one listing,
        then only new folders and those of this key: cheap in a folder of 10,000 runs)."""
        cache = self._cache()
        found = None
        for run_id in self._names():
            e = cache.get(run_id)
            if e is not None and e.key is not None and e.key != key:
                continue  # a run's key does not change
            e = self._entry(run_id) if (self.root / run_id / "config.json").is_file() else None
            if e is not None and e.key == key and self._state(run_id, e) == State.DONE:
                found = run_id
        return found

    def _names(self) -> list[str]:
        with os.scandir(self.root) as it:
            return sorted(d.name for d in it if d.is_dir() and not d.name.startswith(".") and _ID_RE.fullmatch(d.name))

    def _unfinished(self, run_id: str) -> bool:
        try:
            return self.exists(run_id) and self.status(run_id).get("state") not in (State.DONE, DAMAGED)
        except ValueError:
            return False

    def _resumable(self, key: str) -> str | None:
        """The newest folder of ``key`` left unfinished (interrupted, a dead writer's, failed or cancelled)."""
        for run_id, e in reversed(self._entries().items()):
            if e.key == key and self._state(run_id, e) in STOPPED:
                return run_id
        return None

    def claim_for_resume(self, run_id: str) -> None:
        """Claim an existing run to resume it (``runs resume``, Retry, a cluster task requeued);
        :class:`Busy` when another live writer has its key."""
        key = self.config(run_id).key()
        claimed, holder = self.claims.acquire(key, run_id)
        mine = holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()
        if not claimed and not mine:
            raise Busy(holder or {})
        self.claims.move(key, run_id)

    def release(self, run_id: str) -> None:
        """Drop the claim of a run (it finished, or was cancelled before it started)."""
        try:
            key = self._entry(run_id).key or self.config(run_id).key()
        except (OSError, ValueError):
            return
        self.claims.release(key, run_id)

    # --- writing ----------------------------------------------------------------------------------

    def write_status(self, run_id: str, **updates: Any) -> dict:
        """Merge ``updates`` into ``status.json`` (atomically) and return the result; a finished state
        releases the run's claim."""
        if "state" in updates and updates["state"] not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}. Got {updates['state']!r}")
        p = self.path(run_id) / "status.json"
        try:
            status = read_json(p, run_id) or {}
        except DamagedRun:
            status = {}  # a damaged status is replaced by what is known now
        status.update(updates)
        atomic_write(p, json.dumps(status, indent=1, default=json_default))
        self._wrote(run_id)
        if updates.get("state") in FINISHED:
            key = status.get("key")
            if key:
                self.claims.release(key, run_id)
        return status

    def append_history(self, run_id: str, record: dict) -> None:
        p = self.path(run_id) / "history.jsonl"
        try:
            with open(p, "a") as f:
                f.write(json.dumps(record, default=json_default) + "\n")
        except OSError as e:
            raise write_error(p, e) from None

    def truncate_history(self, run_id: str, epochs: int) -> None:
        """Keep the first ``epochs`` lines (a resumed run rewrites what followed its checkpoint)."""
        rows = self.history(run_id)[:epochs]
        atomic_write(self.path(run_id) / "history.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    def write_metrics(self, run_id: str, metrics: dict) -> None:
        atomic_write(self.path(run_id) / "metrics.json", json.dumps(metrics, indent=1, default=json_default))
        self._wrote(run_id)

    def _wrote(self, run_id: str) -> None:
        """This process changed ``run_id``'s files: its readers see it at the next look (that run re-read, not
        every finished run of the folder: the queue writes progress every few seconds)."""
        self._seen = None
        _TOUCHED.setdefault(str(self.root), set()).add(run_id)

    def write_predictions(self, run_id: str, **arrays: np.ndarray) -> None:
        atomic_write(self.path(run_id) / "predictions.npz", lambda f: np.savez(f, **arrays))
        self._wrote(run_id)

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
        self.release(run_id)
        shutil.rmtree(self._require(run_id))

    # --- reading ----------------------------------------------------------------------------------

    def config(self, run_id: str) -> RunConfig:
        """The run's config; :class:`DamagedRun` when config.json cannot be read as one."""
        self._require(run_id)
        e = self._entry(run_id)
        if e.config is None:
            raise DamagedRun(run_id, "config.json", (e.problem or "missing").split(": ", 2)[-1])
        return RunConfig.from_dict(e.config)

    def status(self, run_id: str) -> dict:
        """The run's status as readers should see it: ``damaged`` (with the file and the reason) when a
        file cannot be read, ``interrupted`` when its writer is gone (a dead claim), else as written."""
        self._require(run_id)
        return self._derived(run_id, self._entry(run_id))

    def _derived(self, run_id: str, e: Entry) -> dict:
        if e.problem is not None:
            return {**(e.status or {}), "state": DAMAGED, "error": e.problem, "damaged": e.problem}
        st = e.status or {}
        if st.get("state") in ACTIVE and not self._writer_alive(st):
            where = f"{st.get('host', '?')}, pid {st.get('pid', '?')}"
            return {
                **st,
                "state": State.INTERRUPTED,
                "written_state": st["state"],
                "error": f"The process training this run stopped ({where}); resume it to continue from its last epoch",
            }
        return st

    def _state(self, run_id: str, e: Entry) -> str:
        """The state readers see (as :meth:`_derived`), decoding status.json only for active runs."""
        if e.problem is not None:
            return DAMAGED
        return self._derived(run_id, e)["state"] if e.state in ACTIVE else e.state

    def _writer_alive(self, st: dict) -> bool:
        key = st.get("key")
        claim = self.claims.read(key) if key else None
        if claim is not None:
            return self.claims.alive(claim)
        # no claim (a run recorded before claims): its process, where that can be told
        if st.get("host") == socket.gethostname():
            return pid_alive(st.get("pid"))
        return True

    def metrics(self, run_id: str) -> dict | None:
        """metrics.json (None before the run has finished); :class:`DamagedRun` when it cannot be read."""
        self._require(run_id)
        e = self._entry(run_id)
        if e.problem is not None and "metrics.json" in e.problem:
            raise DamagedRun(run_id, "metrics.json", e.problem.split(": ", 2)[-1])
        return e.metrics

    def history(self, run_id: str) -> list[dict]:
        return read_history(self._require(run_id) / "history.jsonl", run_id)

    def predictions(self, run_id: str) -> dict[str, np.ndarray] | None:
        return read_predictions(self._require(run_id) / "predictions.npz", run_id)

    def ids(self) -> list[str]:
        """Run ids (damaged runs included), oldest first."""
        return list(self._entries())

    def summaries(self) -> list[dict]:
        """What a listing shows of every run, damaged ones included, from one look at the folder: id, name,
        state as readers see it, device, test AUROC/AUPRC, error, warning (no file decoded for finished runs)."""
        out = []
        for r, e in self._entries().items():
            row = {"id": r, **e.brief, "state": self._state(r, e)}
            if row["state"] == DAMAGED:
                row["error"] = e.problem
            elif row["state"] != e.state:  # interrupted: a dead writer
                row["error"] = self._derived(r, e).get("error")
            out.append(row)
        return out

    def experiments(self, states: tuple[str, ...] = (State.DONE,)) -> dict[str, str]:
        """Run key (:meth:`RunConfig.key`) -> the newest run in one of ``states`` (damaged runs never count).

        Keys are recomputed from each run's ``config.json``, so runs recorded before a change to
        what the key covers still match."""
        out: dict[str, str] = {}
        for run_id, e in self._entries().items():  # oldest first: a newer run of the same key overwrites
            if e.key is not None and self._state(run_id, e) in states:
                out[e.key] = run_id
        return out

    def damaged(self) -> list[tuple[str, str]]:
        """(run id, what is wrong) for every run with a file that cannot be read."""
        return list(self._once("damaged", lambda es: [(r, e.problem) for r, e in es.items() if e.problem]))

    def check(self) -> list[tuple[str, str]]:
        """Read every file of every run — config, status, metrics, history, predictions and the checkpoint of
        a finished run — and return (run id, what is wrong) for each damaged one (``runs --check``)."""
        out = []
        for run_id, e in self._entries().items():
            if e.problem is not None:
                out.append((run_id, e.problem))
                continue
            try:
                self.history(run_id)
                if e.state == State.DONE:
                    self.predictions(run_id)
                    check_checkpoint(self.path(run_id) / "model.pt", run_id)
            except DamagedRun as err:
                out.append((run_id, str(err)))
        return out

    def duplicates(self) -> dict[str, list[str]]:
        """Done runs that repeat another done run's key (the same experiment and seed): the newest done
        run -> the older copies (recorded before claims made each run train once)."""

        def find(entries: dict[str, Entry]) -> dict[str, list[str]]:
            by: dict[str, list[str]] = {}
            for run_id, e in entries.items():
                if e.key is not None and e.problem is None and e.state == State.DONE:
                    by.setdefault(e.key, []).append(run_id)
            return {ids[-1]: ids[:-1] for ids in by.values() if len(ids) > 1}

        return {k: list(v) for k, v in self._once("duplicates", find).items()}

    def dedupe(self) -> list[tuple[str, str]]:
        """Move the older copies of :meth:`duplicates` into ``<runs>/.archive/`` (nothing is deleted);
        returns (archived run, the run kept)."""
        moved = []
        for keep, copies in self.duplicates().items():
            for run_id in copies:
                dest = self.root / ".archive" / run_id
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.path(run_id), dest)
                moved.append((run_id, keep))
        return moved

    def orphans(self) -> list[str]:
        """Runs written as running or queued whose writer is gone (readers report them interrupted)."""
        out = []
        for run_id, e in self._entries().items():
            if e.problem is None and e.state in ACTIVE and self._state(run_id, e) == State.INTERRUPTED:
                out.append(run_id)
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
        for run_id, e in self._entries().items():
            if e.problem is not None or e.status is None:
                continue  # damaged: listed as such, never rewritten
            old, new = e.status.get("key"), e.key
            if old != new or e.status.get("name") != e.labels["name"]:
                before = e.status.get("keys_before", [])
                before = [*before, old] if old != new and old else before
                self.write_status(run_id, key=new, name=e.labels["name"], keys_before=before)
                if old != new:
                    changed.append((run_id, old, new))
        return changed

    def table(self):
        """A pandas DataFrame, one row per readable run, oldest first: id, name, state, config fields, metrics;
        ``duplicate_of`` names the newer done run an older copy repeats. Damaged runs are left out
        (:meth:`damaged` lists them). Finished runs' rows come from :meth:`_finished_rows`; only active runs'
        rows are made here."""
        import pandas as pd

        entries = self._entries()
        finished = self._finished_rows(entries)
        active = [
            self._row(r, e, self._derived(r, e))
            for r, e in entries.items()
            if e.problem is None and e.state not in FINISHED
        ]
        if not active and not finished.ids:
            return pd.DataFrame([])
        if not active:
            frame = finished.frame.copy()  # the cached rows stay as they are
        elif not finished.ids:
            frame = pd.DataFrame(active)
        else:  # active rows go to their places (oldest first)
            order = [r for r, e in entries.items() if e.problem is None]
            frame = pd.concat([finished.frame, pd.DataFrame(active)], ignore_index=True)
            frame = frame.set_index("id").loc[order].reset_index()
        dup = {old: keep for keep, olds in self.duplicates().items() for old in olds}
        frame.insert(list(frame.columns).index("warning") + 1, "duplicate_of", [dup.get(r) for r in frame["id"]])
        return frame

    def _finished_rows(self, entries: dict[str, Entry]) -> Rows:
        """The table rows of the finished runs in ``entries``: the last rows (:class:`Rows`, in memory or in
        ``.index-table.json``) where a run's files have not changed, made where they have; saved when any
        changed. Kept up to date by every reader that updates the index, so a page that opens a folder another
        process read first (a CLI listing, a sweep) finds them made."""
        import pandas as pd

        last = load_rows(self.root)
        ids: list[str] = []
        taken: list[int] = []  # positions in the last rows
        made: list[dict] = []
        for run_id, e in entries.items():
            if e.problem is not None or e.state not in FINISHED:
                continue
            pos = last.position(run_id, e.sig) if last is not None else None
            if pos is None:
                # a finished run's status as the index summarised it (10,000 status files not decoded for a table)
                made.append(self._row(run_id, e, {**e.brief, "state": e.state}))
            else:
                taken.append(pos)
            ids.append(run_id)
        if last is not None and not made and taken == list(range(len(last.ids))):
            return last
        pieces = [last.frame.iloc[taken]] if taken else []
        pieces += [pd.DataFrame(made)] if made else []
        if not pieces:
            frame = pd.DataFrame([])
        elif len(pieces) == 1:
            frame = pieces[0].reset_index(drop=True)
        else:
            frame = pd.concat(pieces, ignore_index=True).set_index("id").loc[ids].reset_index()
        rows = Rows(ids, [entries[r].sig for r in ids], frame)
        save_rows(self.root, rows)
        return rows

    @staticmethod
    def _row(run_id: str, e: Entry, st: dict) -> dict:
        row = {"id": run_id, "name": st.get("name") or e.labels["name"]}
        base = e.row()
        row["experiment"], row["key"] = base["experiment"], base["key"]
        row["data_label"], row["model_label"] = base["data_label"], base["model_label"]
        for k in ("state", "created", "error", "warning"):
            row[k] = st.get(k)
        row.update(base)
        return row

    def signature(self) -> int:
        """A hash that changes whenever any run's files or derived state do (for caches keyed by the
        folder's contents, e.g. a page's tables)."""
        files = self._once("files", lambda es: hash(tuple((r, str(e.sig)) for r, e in es.items())))
        active = self._once("active", lambda es: [(r, e) for r, e in es.items() if e.state in ACTIVE])
        # a running run's state also follows its claim (a writer gone), which no file change shows
        return hash((files, tuple(self._state(r, e) for r, e in active)))

    def _once(self, name: str, compute: Callable[[dict[str, Entry]], Any]) -> Any:
        """``compute(entries)``, computed once per change of the folder (a rerun of a page of 10,000 runs asks
        for the signature, the duplicates and the damaged runs without a pass over every entry each time).
        Callers copy what they hand out."""
        entries = self._entries()
        snap = _SNAPSHOT.get(str(self.root))
        if snap is None or snap[0] is not entries:
            snap = _SNAPSHOT[str(self.root)] = (entries, {})
        if name not in snap[1]:
            snap[1][name] = compute(entries)
        return snap[1][name]

    # --- the index --------------------------------------------------------------------------------

    def _entry(self, run_id: str) -> Entry:
        cache = self._cache()
        p = self.path(run_id)
        sig = file_signature(p)
        e = cache.get(run_id)
        if e is None or e.sig != sig:
            e = read_entry(p, run_id, sig)
            with CACHE_LOCK:
                cache[run_id] = e
        return e

    def _cache(self) -> dict[str, Entry]:
        with CACHE_LOCK:
            cache = CACHES.get(str(self.root))
            if cache is None:
                cache = CACHES[str(self.root)] = load_index(self.root)
            return cache

    def _entries(self) -> dict[str, Entry]:
        """Every run folder's entry, oldest first, re-reading only folders whose files changed. One look at
        the folder serves the calls of the next :data:`FRESH_S` seconds (a command or a page asks many times);
        this store's own writes are seen at once."""
        if self._seen is not None and time.monotonic() - self._seen[0] < FRESH_S:
            return self._seen[1]
        if not self.root.is_dir():
            return {}
        cache = self._cache()
        out: dict[str, Entry] = {}
        changed = different = False
        root = os.fspath(self.root) + os.sep
        now_ = time.monotonic()
        every = now_ - _CHECKED.get(str(self.root), -RECHECK_S) >= RECHECK_S
        touched = _TOUCHED.pop(str(self.root), set())
        last = _SNAPSHOT.get(str(self.root), ({}, None))[0]
        for run_id in self._names():
            e = cache.get(run_id)
            if e is not None and not every and e.stable() and run_id not in touched:
                out[run_id] = e  # a finished run, looked at less than RECHECK_S ago
                different = different or e is not last.get(run_id)
                continue
            sig = file_signature(root + run_id)
            if sig[0] is None:  # no config.json: not a run (yet)
                continue
            if e is None or e.sig != sig:
                e = read_entry(self.root / run_id, run_id, sig)
                changed = changed or e.stable()
            different = different or e is not last.get(run_id)
            out[run_id] = e
        with CACHE_LOCK:
            gone = set(cache) - set(out)
            if not different and len(out) == len(last):
                out = last  # the same entries: what was derived from them still holds
            cache.clear()
            cache.update(out)
        if changed or gone:
            save_index(self.root, out)
            self._finished_rows(out)  # the table's rows follow the index (see _finished_rows)
        if every:
            _CHECKED[str(self.root)] = now_
        self._seen = (time.monotonic(), out)
        return out
