"""A run's checkpoint files: what they hold, which epoch is kept, how they are read back.

- ``model.pt``: the selected epoch's weights (``state_dict``) and the *effective* model record
  (``model``: the :class:`~medtl.config.ModelConfig` actually built, with its number of outputs,
  the input channels, the image size and the normalisation statistics), so that rebuilding the
  network needs no inference from tensor shapes. ``config`` (the run's config as asked) and
  ``epoch`` are kept as before.
- ``last.pt``: everything a resume needs (weights, optimiser, scheduler, random state, counters
  and the selection's best score), written after every epoch and deleted when the run completes.

Both go through :meth:`RunStore.save_checkpoint` (temporary file + ``os.replace``), so a process
killed during a save leaves the previous file whole. Files are read with ``weights_only=True``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medtl.config import ModelConfig
from medtl.initialisations import Availability, Init
from medtl.runs import RunStore
from medtl.states import State

MODEL_FILE = "model.pt"
RESUME_FILE = "last.pt"


def model_record(cfg: ModelConfig, model: nn.Module, image_size: int, in_channels: int) -> dict[str, Any]:
    """What was built: enough to rebuild ``model`` with :func:`medtl.models.rebuild` (plain types only)."""
    adapter = model.adapter
    return {
        "config": cfg.to_dict(),
        "image_size": int(image_size),
        "in_channels": int(in_channels),
        "mean": [float(v) for v in adapter.mean.flatten()],
        "std": [float(v) for v in adapter.std.flatten()],
    }


def read(path: str | Path) -> dict[str, Any]:
    """A checkpoint file as a dict (``weights_only=True``); an unreadable file is a ValueError naming it."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"Checkpoint {p} does not exist")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file to the user
        raise ValueError(
            f"Cannot read checkpoint {p} ({type(e).__name__}: {e}); it is damaged or not a checkpoint"
        ) from None
    if not isinstance(ck, dict):
        raise ValueError(f"Checkpoint {p} holds a {type(ck).__name__}, not a dict")
    return ck


def run_state_dict(run_id: str, store: RunStore) -> dict[str, torch.Tensor]:
    """The backbone of a finished run's ``model.pt``, in the reference network's names.

    The file's model record (when present: runs trained since it was added) names the backbone
    the weights belong to; older files are taken by their tensor names alone."""
    path = store.path(run_id) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"Run {run_id!r} has no model.pt in {store.root}: it has not finished, or the id is wrong"
        )
    ck = read(path)
    sd = ck.get("state_dict")
    if not isinstance(sd, dict):
        raise ValueError(f"{path} holds no 'state_dict': it is not a MedTL model checkpoint")
    rec = ck.get("model")
    source = f"run:{run_id} ({rec['config']['backbone']}, cut {rec['config']['cut']})" if rec else f"run:{run_id}"
    backbone = {k.removeprefix("backbone."): v for k, v in sd.items() if k.startswith("backbone.")}
    if not backbone:
        raise ValueError(f"{source} has no backbone weights in {path}")
    return backbone


def run_source(init: Init, backbone: str, weights: str, store: RunStore) -> dict[str, torch.Tensor]:
    """The ``run`` record's source (:mod:`medtl.initialisations`): :func:`run_state_dict`."""
    return run_state_dict(init.ref.strip(), store)


def run_status(init: Init, backbone: str, weights: str, store: RunStore) -> Availability:
    """The ``run`` record's availability: a finished run of ``store`` with its ``model.pt``."""
    ref = init.ref.strip()
    if not ref:
        return Availability(False, f"Enter the id of a {init.kind.ref}")
    try:
        folder = store.path(ref)
    except ValueError as e:  # not a run id at all
        return Availability(False, str(e))
    if not folder.is_dir():
        return Availability(False, f"No run {ref} in {store.root}: a run: source is a finished run of this runs folder")
    state = store.status(ref).get("state", "?")
    if state != State.DONE:
        return Availability(False, f"Run {ref} has not finished (state: {state}): it cannot be a source yet")
    return Availability(True, file=str(folder / MODEL_FILE))


class ModelCheckpoint:
    """Keeps the best epoch by a validation metric and writes ``model.pt`` when it improves
    (as Lightning's ``ModelCheckpoint`` with ``save_top_k=1``).

    ``monitor`` is ``val_loss`` (lower is better) or a history key where higher is better
    (``val_auroc``, ``val_auprc``). The first epoch is always kept, so that ``model.pt`` exists even
    when no epoch has a finite score (a diverged run is then reported with a warning, not lost);
    after it, a NaN score never wins."""

    def __init__(self, store: RunStore, run_id: str, monitor: str, record: dict[str, Any], config_json: str):
        self.store, self.run_id, self.monitor = store, run_id, monitor
        self.record, self.config_json = record, config_json
        self.best_score, self.best_epoch = -math.inf, -1  # best_epoch is 0-based; -1: none yet

    def score(self, history_record: dict) -> float:
        s = -history_record["val_loss"] if self.monitor == "val_loss" else history_record[self.monitor]
        return -math.inf if math.isnan(s) else float(s)

    def update(self, epoch: int, history_record: dict, model: nn.Module) -> bool:
        """Record epoch ``epoch`` (0-based); write ``model.pt`` and return True where it is the best so far."""
        s = self.score(history_record)
        if self.best_epoch >= 0 and s <= self.best_score:
            return False
        self.best_score, self.best_epoch = s, epoch
        self.store.save_checkpoint(
            self.run_id,
            MODEL_FILE,
            {"state_dict": model.state_dict(), "epoch": epoch + 1, "config": self.config_json, "model": self.record},
        )
        return True

    def load_best(self, model: nn.Module, device) -> None:
        """Put the selected epoch's weights into ``model``."""
        ck = torch.load(self.store.path(self.run_id) / MODEL_FILE, map_location=device, weights_only=True)
        model.load_state_dict(ck["state_dict"])


def save_resume_state(
    store: RunStore,
    run_id: str,
    model,
    opt,
    sched,
    gen: torch.Generator,
    epoch: int,
    selection: ModelCheckpoint,
    seen: int,
    train_seconds: float,
) -> None:
    """Write ``last.pt`` after epoch ``epoch`` (0-based): everything :func:`restore` needs."""
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "epoch": epoch,
        "best_score": selection.best_score,
        "best_epoch": selection.best_epoch,
        "seen": seen,
        "train_seconds": train_seconds,
    }
    store.save_checkpoint(run_id, RESUME_FILE, state)


def load_resume_state(store: RunStore, run_id: str, device) -> dict[str, Any] | None:
    """``last.pt`` of a run, or None where there is none (the run restarts from epoch 1)."""
    p = store.path(run_id) / RESUME_FILE
    if not p.is_file():
        return None
    return torch.load(p, map_location=device, weights_only=True)


def restore(
    ck: dict[str, Any], model, opt, sched, gen: torch.Generator, selection: ModelCheckpoint
) -> tuple[int, int, float]:
    """Put a ``last.pt`` dict back into the training objects; returns (next epoch, images seen, training seconds)."""
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    if sched is not None and ck.get("scheduler"):
        sched.load_state_dict(ck["scheduler"])
    gen.set_state(ck["generator"])
    torch.set_rng_state(ck["torch_rng"])
    selection.best_score, selection.best_epoch = float(ck["best_score"]), int(ck["best_epoch"])
    return int(ck["epoch"]) + 1, int(ck["seen"]), float(ck["train_seconds"])
