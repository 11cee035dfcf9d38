"""JobQueue: one background worker thread per device that trains queued runs in order.

The devices come from an argument, else ``$MEDTL_DEVICES`` (e.g. ``cuda:0,cuda:1``), else every
visible CUDA GPU, else one ``cpu`` worker. A queued run goes to the first free worker, which
records its device in ``status.json`` (``device``, ``worker``) and trains on it. Streamlit-free and
thread-safe. The worker reports through the RunStore (on disk, for any
reader) and a lock-protected snapshot of live progress (for this process). Cancellation sets
a ``threading.Event`` that the trainer checks every batch. On start-up, runs left ``running`` by
a process that no longer exists become ``interrupted`` (resumable); runs left ``queued`` by one
are queued again, so an app restart loses nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import logging
import os
import queue
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from medtl import train
from medtl.claims import Heartbeat
from medtl.config import RunConfig
from medtl.runs import Busy, RunStore, now
from medtl.states import STOPPED, State

log = logging.getLogger(__name__)


_DEVICE_RE = re.compile(r"(cpu|mps|cuda)(:\d+)?")  # matched whole (fullmatch)


@dataclass
class _Job:
    run_id: str
    resume: bool = False


@dataclass(frozen=True)
class Worker:
    """One training slot: ``name`` is unique (``cpu#0``, ``cpu#1`` when a device is listed twice)."""

    name: str
    device: str


def default_devices() -> list[str]:
    """``$MEDTL_DEVICES`` if set, else every visible CUDA GPU, else ``["cpu"]``."""
    env = os.environ.get("MEDTL_DEVICES", "").strip()
    if env:
        return [d.strip() for d in env.split(",") if d.strip()]
    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"]


def make_workers(devices: str | list[str] | None = None) -> list[Worker]:
    """Workers for ``devices`` (a list or a comma-separated string; None = :func:`default_devices`)."""
    given = devices
    if isinstance(devices, str):
        devices = [d.strip() for d in devices.split(",") if d.strip()]
    devices = list(devices) if devices is not None else default_devices()
    if not devices:
        raise ValueError(f"devices must name at least one device (e.g. 'cpu' or 'cuda:0,cuda:1'). Got {given!r}")
    for d in devices:
        if not _DEVICE_RE.fullmatch(d):
            raise ValueError(f"Unknown device {d!r} in devices/MEDTL_DEVICES: use cpu, mps, cuda or cuda:N")
        if d.startswith("cuda"):
            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            index = int(d.split(":")[1]) if ":" in d else 0
            if index >= n:
                raise ValueError(f"Device {d!r} in devices/MEDTL_DEVICES does not exist here: {n} CUDA GPU(s) visible")
    seen: dict[str, int] = {}
    workers = []
    for d in devices:
        i = seen[d] = seen.get(d, -1) + 1
        workers.append(Worker(f"{d}#{i}" if devices.count(d) > 1 else d, d))
    return workers


class JobQueue:
    """FIFO training jobs, one worker thread per device.

    Args:
        store: where runs live.
        recover: mark orphaned runs at start-up (see module docstring).
        devices: the workers' devices, a list or comma-separated (``cuda:0,cuda:1``; a device listed
            twice gets two workers); None = ``$MEDTL_DEVICES``, else every CUDA GPU, else ``cpu``.
        on_finished: called with the run id by the worker after each run (done, failed or cancelled),
            one call at a time, before the run leaves :meth:`snapshot` (so :meth:`wait` also waits for
            what it submits); e.g. to queue a study's next stage. Its errors are logged, not raised.
    """

    def __init__(
        self,
        store: RunStore,
        recover: bool = True,
        devices: str | list[str] | None = None,
        on_finished: Callable[[str], None] | None = None,
    ):
        self.store = store
        self.on_finished = on_finished
        self._hook_lock = threading.Lock()  # two workers finishing together must not submit the same run twice
        self.workers = make_workers(devices)
        self._q: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._cancel: dict[str, threading.Event] = {}
        self._live: dict[str, dict] = {}
        self._running: dict[str, str] = {}  # run id -> worker name
        self.interrupted: list[str] = []
        self._stopping = False
        self._keys: dict[str, str] = {}  # run id -> its key, whose claim this queue keeps alive
        self._heartbeat = Heartbeat(store.claims)
        if recover:
            self._recover()
        self._threads = [
            threading.Thread(target=self._loop, args=(w,), name=f"medtl-jobs-{w.name}", daemon=True)
            for w in self.workers
        ]
        for t in self._threads:
            t.start()
        atexit.register(self._stop_at_exit)

    # --- API --------------------------------------------------------------------------------------

    def submit(self, cfg: RunConfig) -> str:
        """Claim, create (or resume, where a dead writer left it) a queued run and enqueue it; returns its id.

        Raises:
            Busy: another live writer (a sweep, a cluster task, another app) has this run.
            ValueError: it is done already, or a name the registry does not know.
        """
        start = self.store.start(cfg, state=State.QUEUED)
        if start.action == "busy":
            raise Busy(start.holder or {})
        if start.action == "done":
            raise ValueError(f"Run {start.run_id} has this exact config and is done: it is not trained twice")
        self._enqueue(_Job(start.run_id, resume=start.action == "resume"), cfg.key())
        return start.run_id

    def resume(self, run_id: str) -> None:
        """Queue an interrupted (or failed, cancelled) run again, continuing from its last epoch checkpoint."""
        st = self.store.status(run_id)
        if st.get("state") not in STOPPED:
            raise ValueError(f"Run {run_id} is {st.get('state')}; only interrupted, failed or cancelled runs resume")
        self.store.claim_for_resume(run_id)
        # the old progress would show until the first new event: replace it now
        self.store.write_status(
            run_id,
            state=State.QUEUED,
            error=None,
            queued=now(),
            progress={"phase": "queued to resume"},
            pid=os.getpid(),
        )
        self._enqueue(_Job(run_id, resume=True), st.get("key"))

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running job; returns whether there was one to cancel."""
        with self._lock:
            ev = self._cancel.get(run_id)
            if ev is None:
                return False
            ev.set()
            running = run_id in self._running
        if not running:  # never started: record it now (its claim is released), the worker will skip it
            self.store.write_status(run_id, state=State.CANCELLED, finished=now(), error="Cancelled before it started")
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
        for _ in self._threads:
            self._q.put(None)  # one stop marker per worker
        for t in self._threads:
            t.join(timeout=60)

    def _stop_at_exit(self) -> None:
        """The process is exiting (e.g. the server was stopped mid-run): stop the running jobs at their
        next batch and wait for them, so that no training thread is killed inside a native op (which
        aborts with "terminate called without an active exception"). Their runs are left interrupted,
        to be resumed; queued runs stay queued and are taken up again by the next app start."""
        self._stopping = True
        self.shutdown(cancel_running=True)

    # --- internals --------------------------------------------------------------------------------

    def _enqueue(self, job: _Job, key: str | None = None) -> None:
        with self._lock:
            self._cancel[job.run_id] = threading.Event()
            self._live[job.run_id] = {"state": State.QUEUED}
            if key:
                self._keys[job.run_id] = key
                self._heartbeat.add(key)  # a queued run's claim stays alive while this app waits to train it
        self._q.put(job)

    def _recover(self) -> None:
        """Runs a stopped writer left running become interrupted (resumable); runs it left queued are
        claimed and queued here again. A run another live writer has taken meanwhile is left to it."""
        for run_id in self.store.orphans():
            st = self.store.status(run_id)
            if st.get("written_state") == State.RUNNING:
                self.store.write_status(run_id, state=State.INTERRUPTED, finished=now(), error=st.get("error"))
                self.interrupted.append(run_id)
                continue
            try:
                self.store.claim_for_resume(run_id)
            except Busy:
                continue
            self.store.write_status(run_id, pid=os.getpid(), host=socket.gethostname())
            self._enqueue(_Job(run_id), st.get("key"))

    def _on_event(self, run_id: str, event: dict) -> None:
        with self._lock:
            live = self._live.setdefault(run_id, {})
            if event.get("type") in ("status", "data"):  # a new phase: the last one's counts no longer apply
                for k in ("done", "total", "final"):
                    live.pop(k, None)
            if event.get("type") == "epoch":
                live.setdefault("epochs_done", []).append(
                    {k: event[k] for k in ("epoch", "train_loss", "val_loss", "val_auroc", "val_auprc")}
                )
            live.update({k: v for k, v in event.items() if k != "type"})

    def _loop(self, worker: Worker) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            with self._lock:
                ev = self._cancel.get(job.run_id)
                if ev is None or ev.is_set():  # cancelled while queued
                    self._cancel.pop(job.run_id, None)
                    self._live.pop(job.run_id, None)
                    self._heartbeat.discard(self._keys.pop(job.run_id, ""))
                    continue
                self._running[job.run_id] = worker.name
                self._live[job.run_id] = {"state": State.RUNNING, "device": worker.name}
            try:
                self._train(worker, job, ev)
            except Exception as e:  # noqa: BLE001 - the worker must survive anything a run does
                log.exception("run %s crashed", job.run_id)
                with contextlib.suppress(OSError):
                    self.store.write_status(
                        job.run_id, state=State.FAILED, finished=now(), error=f"{type(e).__name__}: {e}"
                    )
            finally:
                self._finished(job.run_id)
                with self._lock:
                    self._running.pop(job.run_id, None)
                    self._cancel.pop(job.run_id, None)
                    self._live.pop(job.run_id, None)
                    self._heartbeat.discard(self._keys.pop(job.run_id, ""))

    def _finished(self, run_id: str) -> None:
        hook = self.on_finished
        if hook is None or self._stopping:
            return
        with self._hook_lock:
            try:
                hook(run_id)
            except Exception:  # noqa: BLE001 - a hook's bug must not kill the worker
                log.exception("on_finished hook failed after run %s", run_id)

    def _train(self, worker: Worker, job: _Job, cancel: threading.Event) -> None:
        cfg = self.store.config(job.run_id)
        dev = torch.device(worker.device)
        # The worker decides where the run trains. device is an execution field, outside
        # RunConfig.key(), so the experiment stays the same; config.json keeps what the user asked.
        try:
            tc = cfg.train.replace(device=worker.device)  # "cuda:1" where TrainConfig takes an index
        except ValueError:
            tc = cfg.train.replace(device=dev.type)
        cfg = cfg.replace(train=tc)
        self.store.write_status(job.run_id, device=worker.device, worker=worker.name)
        # where TrainConfig names only "cuda", the current CUDA device of this thread picks the GPU
        gpu = torch.cuda.device(dev.index) if dev.type == "cuda" and dev.index is not None else contextlib.nullcontext()
        with gpu:
            status = train.run(
                cfg, self.store, job.run_id, cancel, lambda e, r=job.run_id: self._on_event(r, e), job.resume
            )
        if self._stopping and status.get("state") == State.CANCELLED:  # stopped by the app's exit, not the user
            self.store.write_status(
                job.run_id,
                state=State.INTERRUPTED,
                error="The app stopped during this run; resume it to continue from its last epoch",
            )
