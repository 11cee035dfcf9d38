"""JobQueue: one background worker thread that trains queued runs in order.

Streamlit-free and thread-safe. The worker reports through the RunStore (on disk, for any
reader) and a lock-protected snapshot of live progress (for this process). Cancellation sets
a ``threading.Event`` that the trainer checks every batch. On start-up, runs left ``running`` by
a process that no longer exists become ``interrupted`` (resumable); runs left ``queued`` by one
are queued again, so an app restart loses nothing.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import queue
import threading
from dataclasses import dataclass

from medtl import train
from medtl.config import RunConfig
from medtl.runs import RunStore, now

log = logging.getLogger(__name__)


@dataclass
class _Job:
    run_id: str
    resume: bool = False


class JobQueue:
    """FIFO training jobs on one worker thread.

    Args:
        store: where runs live.
        recover: mark orphaned runs at start-up (see module docstring).
    """

    def __init__(self, store: RunStore, recover: bool = True):
        self.store = store
        self._q: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._cancel: dict[str, threading.Event] = {}
        self._live: dict[str, dict] = {}
        self._current: str | None = None
        self.interrupted: list[str] = []
        if recover:
            self._recover()
        self._worker = threading.Thread(target=self._loop, name="medtl-jobs", daemon=True)
        self._worker.start()

    # --- API --------------------------------------------------------------------------------------

    def submit(self, cfg: RunConfig) -> str:
        """Create a queued run and enqueue it; returns its id."""
        run_id = self.store.create(cfg, state="queued")
        self._enqueue(_Job(run_id))
        return run_id

    def resume(self, run_id: str) -> None:
        """Queue an interrupted (or failed, cancelled) run again, continuing from its last epoch checkpoint."""
        st = self.store.status(run_id)
        if st.get("state") in ("running", "queued", "done"):
            raise ValueError(f"Run {run_id} is {st.get('state')}; only interrupted, failed or cancelled runs resume")
        # the old progress would show until the first new event: replace it now
        self.store.write_status(
            run_id, state="queued", error=None, queued=now(), progress={"phase": "queued to resume"}
        )
        self._enqueue(_Job(run_id, resume=True))

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running job; returns whether there was one to cancel."""
        with self._lock:
            ev = self._cancel.get(run_id)
            if ev is None:
                return False
            ev.set()
            running = self._current == run_id
        if not running:  # never started: record it now, the worker will skip it
            self.store.write_status(run_id, state="cancelled", finished=now(), error="Cancelled before it started")
        return True

    def snapshot(self) -> dict[str, dict]:
        """Live progress of this process's queued and running jobs (a copy, safe to read)."""
        with self._lock:
            return copy.deepcopy(self._live)

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._live)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the queue is empty (tests, scripts). Returns False on timeout."""
        import time

        end = None if timeout is None else time.monotonic() + timeout
        while self.busy:
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(0.05)
        return True

    def shutdown(self, cancel_running: bool = True) -> None:
        if cancel_running:
            with self._lock:
                for ev in self._cancel.values():
                    ev.set()
        self._q.put(None)
        self._worker.join(timeout=60)

    # --- internals --------------------------------------------------------------------------------

    def _enqueue(self, job: _Job) -> None:
        with self._lock:
            self._cancel[job.run_id] = threading.Event()
            self._live[job.run_id] = {"state": "queued"}
        self._q.put(job)

    def _recover(self) -> None:
        for run_id in self.store.orphans():
            st = self.store.status(run_id)
            if st.get("state") == "running":
                self.store.write_status(
                    run_id,
                    state="interrupted",
                    finished=now(),
                    error="The process training this run stopped; resume it to continue from its last epoch",
                )
                self.interrupted.append(run_id)
            else:
                self.store.write_status(run_id, pid=None)
                self._enqueue(_Job(run_id))

    def _on_event(self, run_id: str, event: dict) -> None:
        with self._lock:
            live = self._live.setdefault(run_id, {})
            if event.get("type") == "epoch":
                live.setdefault("epochs_done", []).append(
                    {k: event[k] for k in ("epoch", "train_loss", "val_loss", "val_auroc", "val_auprc")}
                )
            live.update({k: v for k, v in event.items() if k != "type"})

    def _loop(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            with self._lock:
                ev = self._cancel.get(job.run_id)
                if ev is None or ev.is_set():  # cancelled while queued
                    self._cancel.pop(job.run_id, None)
                    self._live.pop(job.run_id, None)
                    continue
                self._current = job.run_id
                self._live[job.run_id] = {"state": "running"}
            try:
                cfg = self.store.config(job.run_id)
                train.run(cfg, self.store, job.run_id, ev, lambda e, r=job.run_id: self._on_event(r, e), job.resume)
            except Exception as e:  # noqa: BLE001 - the worker must survive anything a run does
                log.exception("run %s crashed", job.run_id)
                with contextlib.suppress(OSError):
                    self.store.write_status(
                        job.run_id, state="failed", finished=now(), error=f"{type(e).__name__}: {e}"
                    )
            finally:
                with self._lock:
                    self._current = None
                    self._cancel.pop(job.run_id, None)
                    self._live.pop(job.run_id, None)
