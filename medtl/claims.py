"""Claims: each run of a shared runs folder is trained by one writer at a time.

A run is claimed by its key (:meth:`medtl.config.RunConfig.key`: the experiment and its seeds) before it
trains: ``<runs>/.claims/<key>.json`` is created with ``O_CREAT | O_EXCL`` — atomic on local disks and on
NFS (v3 and later) — and holds the run id, host, pid and start time. Its modification time is the
heartbeat, refreshed by a thread of the process that holds it (:class:`Heartbeat`). A claim is **alive**
while its process runs (same host) or its heartbeat is younger than :data:`STALE_S` seconds (another
host: ``$MEDTL_CLAIM_STALE_S``, default 300). A dead claim is taken over: renamed aside (one writer wins the
rename), then created anew — and the run it named is resumed in its folder, not trained again. No
database and no lock server: the filesystem's exclusive create is the one mechanism (as in
``filelock``'s soft locks and SLURM's own state files).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path

STALE_S = float(os.environ.get("MEDTL_CLAIM_STALE_S", "300"))
HEARTBEAT_S = min(30.0, STALE_S / 5)
FOLDER = ".claims"


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


class Claims:
    """The claims of one runs folder."""

    def __init__(self, root: Path):
        self.dir = Path(root) / FOLDER

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def read(self, key: str) -> dict | None:
        """The claim on ``key`` with its heartbeat time (``beat``), or None. A claim being written (empty,
        not yet JSON) reads as held by an unknown process since its file time."""
        p = self.path(key)
        try:
            st = p.stat()
            raw = p.read_bytes()
        except FileNotFoundError:
            return None
        try:
            info = json.loads(raw)
            info = info if isinstance(info, dict) else {}
        except ValueError:  # half-written by its creator right now, or damaged
            info = {}
        return {**info, "beat": st.st_mtime}

    @staticmethod
    def alive(info: dict | None, now: float | None = None) -> bool:
        """Whether the claim's writer still works on it: its process on this host, else a fresh heartbeat."""
        if not info:
            return False
        if info.get("host") == socket.gethostname() and info.get("pid"):
            return pid_alive(info["pid"])
        return (now or time.time()) - info.get("beat", 0) < STALE_S

    def acquire(self, key: str, run_id: str) -> tuple[bool, dict | None]:
        """Claim ``key`` for ``run_id``. Returns (claimed, the claim found): ``(True, None)`` on a free key,
        ``(True, dead claim)`` when a dead claim was taken over (its ``run_id`` is the run to resume), and
        ``(False, live claim)`` when another writer holds it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        taken = None
        for _ in range(3):
            if self._create(key, run_id):
                return True, taken
            info = self.read(key)
            if info is None:
                continue  # released meanwhile: try again
            if self.alive(info):
                return False, info
            aside = self.path(key).with_name(f"{key}.dead-{secrets.token_hex(4)}")
            try:
                os.rename(self.path(key), aside)  # one taker wins; the others find the new claim
            except FileNotFoundError:
                continue
            taken = info
            aside.unlink(missing_ok=True)
        info = self.read(key)
        return False, info

    def _create(self, key: str, run_id: str) -> bool:
        body = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        try:
            fd = os.open(self.path(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(body, f)
        return True

    def move(self, key: str, run_id: str) -> None:
        """Point this process's claim on ``key`` at ``run_id`` (the folder it resumes), keeping it held."""
        p = self.path(key)
        body = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}")
        tmp.write_text(json.dumps(body))
        os.replace(tmp, p)

    def adopt(self, key: str, run_id: str) -> None:
        """Make this process the holder of ``run_id``'s claim (the process that trains it, which may not be
        the one that created it: a torchrun agent's worker, a cluster task); a claim naming another run is
        left alone."""
        info = self.read(key)
        if info is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            if self._create(key, run_id):
                return
            info = self.read(key)
        if info is not None and info.get("run_id") == run_id:
            self.move(key, run_id)

    def release(self, key: str, run_id: str) -> None:
        """Drop the claim on ``key`` if it names ``run_id`` (a claim taken over by another writer stays)."""
        info = self.read(key)
        if info is not None and info.get("run_id") in (run_id, None):
            self.path(key).unlink(missing_ok=True)

    def beat(self, key: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self.path(key))


class Heartbeat:
    """Refresh claims every :data:`HEARTBEAT_S` seconds from a daemon thread while in use (a context
    manager, or ``add``/``discard`` keys for a long-lived owner such as the job queue)."""

    def __init__(self, claims: Claims, keys: tuple[str, ...] = ()):
        self.claims = claims
        self.keys = set(keys)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="medtl-heartbeat", daemon=True)
        self._thread.start()

    def add(self, key: str) -> None:
        with self._lock:
            self.keys.add(key)

    def discard(self, key: str) -> None:
        with self._lock:
            self.keys.discard(key)

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self._lock:
                keys = list(self.keys)
            for k in keys:
                self.claims.beat(k)

    def stop(self) -> None:
        self._stop.set()

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
