"""One reader and one writer for the files of a run folder.

Reading: every file is decoded and its shape checked here; anything wrong — bytes that are not UTF-8,
JSON that does not parse or has the wrong shape, a truncated ``.npz`` — raises :class:`DamagedRun`
naming the run, the file and the reason, so that one bad run is reported as *damaged* and never becomes
an exception for the others. Writing: :func:`atomic_write` (a temporary file in the same folder, then
``os.replace``) with the user's umask, and a full disk or a permission error as one line naming the file
and the free space (:class:`StoreWriteError`).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from medtl.states import STATES


class DamagedRun(ValueError):
    """A run file that cannot be read: the run is damaged (listed with this reason), the others unaffected."""

    def __init__(self, run_id: str, file: str, reason: str):
        self.run_id, self.file, self.reason = run_id, file, reason
        super().__init__(f"Run {run_id} is damaged: {file}: {reason}")


class StoreWriteError(OSError):
    """A run file could not be written (full disk, no permission): one line naming the file."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()


def _free(path: Path) -> str:
    try:
        free = shutil.disk_usage(path if path.is_dir() else path.parent).free
    except OSError:
        return "free space unknown"
    return f"{free / 1e6:.0f} MB free" if free >= 1e6 else f"{free / 1e3:.0f} kB free"


def write_error(path: Path, e: BaseException) -> StoreWriteError:
    """The one-line message for a failed write (torch reports a full disk as ``unexpected pos``)."""
    code = getattr(e, "errno", None)
    text = str(e)
    if code in (errno.ENOSPC, errno.EDQUOT) or "unexpected pos" in text or "No space left" in text:
        return StoreWriteError(errno.ENOSPC, f"No space left on device writing {path} ({_free(path)})")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreWriteError(code, f"No permission to write {path} ({e.strerror or text})")
    return StoreWriteError(
        code or errno.EIO, f"Cannot write {path}: {text.splitlines()[0] if text else type(e).__name__}"
    )


def atomic_write(path: Path, data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write via a temporary file in the same folder and ``os.replace``: readers never see half a file,
    and a failed write (a full disk) leaves the previous file whole.

    ``data`` is the content, or a function that writes it to the open binary file (a serialiser such as
    ``torch.save``, so that a large object is not held twice in memory). Files get the user's umask
    (``mkstemp`` alone would make them private to the writer, awkward in a shared runs folder).

    Raises:
        StoreWriteError: the file could not be written; the message names it and the free space.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:
        raise write_error(path, e) from None
    try:
        os.fchmod(fd, 0o666 & ~UMASK)
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError | RuntimeError) and not isinstance(e, StoreWriteError):
            raise write_error(path, e) from None
        raise


def json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path: Path, run_id: str) -> dict | None:
    """A run's JSON file as a dict; None when absent; :class:`DamagedRun` when it is not UTF-8 JSON of an object."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DamagedRun(run_id, path.name, f"cannot be read ({e.strerror or e})") from None
    try:
        d = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DamagedRun(run_id, path.name, f"not UTF-8 text (byte {raw[e.start]:#04x} at {e.start})") from None
    except ValueError as e:
        raise DamagedRun(run_id, path.name, f"not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise DamagedRun(run_id, path.name, f"expected a JSON object, found {type(d).__name__}")
    return d


def check_status(d: dict, run_id: str) -> dict:
    if d.get("state") not in STATES:
        raise DamagedRun(run_id, "status.json", f"state must be one of {', '.join(STATES)}; found {d.get('state')!r}")
    for k in ("progress", "summary"):
        if d.get(k) is not None and not isinstance(d[k], dict):
            raise DamagedRun(run_id, "status.json", f"{k} must be an object; found {type(d[k]).__name__}")
    return d


def check_metrics(d: dict, run_id: str) -> dict:
    """metrics.json: sections are objects; the test metrics the tables show are numbers."""
    for section, v in d.items():
        if not isinstance(v, dict):
            raise DamagedRun(run_id, "metrics.json", f"section {section!r} must be an object; found {type(v).__name__}")
    test = d.get("test", {})
    for k in ("auroc", "auprc"):
        if k in test and not isinstance(test[k], int | float):
            raise DamagedRun(run_id, "metrics.json", f"test.{k} must be a number; found {test[k]!r}")
        ci = test.get(f"{k}_ci")
        if ci is not None and not (
            isinstance(ci, list) and len(ci) == 2 and all(isinstance(x, int | float) for x in ci)
        ):
            raise DamagedRun(run_id, "metrics.json", f"test.{k}_ci must be two numbers; found {ci!r}")
    return d


def read_history(path: Path, run_id: str) -> list[dict]:
    """history.jsonl, one object per epoch; a last line being written right now is left out."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as e:
        raise DamagedRun(run_id, path.name, f"not UTF-8 text (at byte {e.start})") from None
    rows = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except ValueError:
            if i == len(lines) - 1:
                break  # the line being appended
            raise DamagedRun(run_id, path.name, f"line {i + 1} is not valid JSON") from None
        if not isinstance(row, dict):
            raise DamagedRun(run_id, path.name, f"line {i + 1} is not a JSON object")
        rows.append(row)
    return rows


PREDICTION_KEYS = ("index", "y_true", "y_score")


def read_predictions(path: Path, run_id: str) -> dict[str, np.ndarray] | None:
    """predictions.npz (index, y_true, y_score, and val_* where kept) with matching lengths; None when absent."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise DamagedRun(run_id, path.name, f"not a readable .npz ({type(e).__name__}: {e})") from None
    missing = [k for k in PREDICTION_KEYS if k not in out]
    if missing:
        raise DamagedRun(run_id, path.name, f"lacks {', '.join(missing)}")
    for prefix in ("", "val_"):
        sizes = {k: len(out[prefix + k]) for k in PREDICTION_KEYS if prefix + k in out}
        if len(set(sizes.values())) > 1:
            raise DamagedRun(run_id, path.name, f"{prefix or 'test '}arrays differ in length: {sizes}")
    return out


def check_checkpoint(path: Path, run_id: str) -> None:
    """A checkpoint that reads back whole with ``weights_only=True`` (a truncated ``model.pt`` does not)."""
    if not path.is_file():
        raise DamagedRun(run_id, path.name, "missing")
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a damaged file
        why = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise DamagedRun(run_id, path.name, f"cannot be loaded ({why})") from None
