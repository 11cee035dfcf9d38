"""What happens around the epochs of a run, as small callbacks with Lightning-shaped hooks.

:class:`~medtl.train.Trainer` runs the loop alone: for each epoch it trains, validates, adds the
epoch's counters to :class:`FitState` and appends the history record, then calls every callback's
:meth:`~Callback.on_epoch_end` in list order, and stops after the epoch where one of them set
``fit.should_stop``. :func:`standard` gives the run's own callbacks in the order that matters:

1. :class:`PlateauSchedule`: ReduceLROnPlateau steps on the validation loss (before the resume
   state is saved, which holds the scheduler);
2. :class:`SelectBest`: :class:`~medtl.checkpoint.ModelCheckpoint` keeps the best epoch in
   ``model.pt`` and sets ``fit.improved`` for early stopping (before ``last.pt``, which holds the
   best score);
3. :class:`ResumeState`: ``last.pt`` (weights, optimiser, scheduler, random state, selection, counters);
4. :class:`EpochEvents`: the ``epoch`` progress event (after ``last.pt``: whoever reads an epoch
   event may kill the process and resume from that epoch);
5. :class:`StopEarly`: :class:`~medtl.monitors.EarlyStopping`, its message, ``fit.should_stop``;
6. :class:`Divergence`: at the end, :func:`~medtl.monitors.divergence_warning` of the whole history.

Callbacks given to the trainer (``Trainer(..., callbacks=[...])``) come after these. Under torchrun
every rank runs them all; the store of a rank other than 0 drops writes (:class:`~medtl.distributed.RankStore`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from medtl.checkpoint import ModelCheckpoint, save_resume_state
from medtl.monitors import EarlyStopping, divergence_warning
from medtl.runs import RunStore


@dataclass
class FitState:
    """What the loop and its callbacks share during a fit. Callbacks read it; ``improved``,
    ``should_stop`` and ``warning`` are theirs to set."""

    model: nn.Module
    opt: torch.optim.Optimizer
    sched: object  # a torch LR scheduler, or None (constant rate)
    gen: torch.Generator  # the run's shuffling/augmentation generator (saved in last.pt)
    selection: ModelCheckpoint
    epochs: int
    start_epoch: int = 0  # 0-based: after a resume, the epoch after the one last.pt holds
    seen: int = 0  # images trained on so far, over all epochs and ranks
    train_seconds: float = 0.0
    chance_loss: float | None = None  # the latest validation's loss of a constant (logit 0) prediction
    improved: bool = False  # this epoch is the best so far (set by SelectBest)
    should_stop: bool = False  # stop after this epoch (set by StopEarly, or any callback)
    warning: str | None = None  # metrics.json's val.warning (set by Divergence)


class Callback(Protocol):
    """Hooks called by the trainer; subclass it for no-op defaults. ``hist`` is the epoch's history
    record as written to ``history.jsonl`` (read it, do not change it); ``epoch`` is 0-based."""

    def on_fit_start(self, fit: FitState) -> None:
        """After the setup and any resume, before the first epoch."""

    def on_epoch_end(self, fit: FitState, epoch: int, hist: dict) -> None:
        """After the epoch's training and validation, once its history record is appended."""

    def on_fit_end(self, fit: FitState) -> None:
        """After the last epoch (or an early stop), before the final evaluation on the test split."""


class PlateauSchedule(Callback):
    """ReduceLROnPlateau steps once an epoch on the validation loss (other schedules step per batch)."""

    def on_epoch_end(self, fit: FitState, epoch: int, hist: dict) -> None:
        if isinstance(fit.sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            fit.sched.step(hist["val_loss"])


class SelectBest(Callback):
    """``model.pt`` holds the best epoch so far (:meth:`ModelCheckpoint.update`); sets ``fit.improved``."""

    def on_epoch_end(self, fit: FitState, epoch: int, hist: dict) -> None:
        fit.improved = fit.selection.update(epoch, hist, fit.model)


class ResumeState(Callback):
    """``last.pt`` after every epoch: everything :func:`~medtl.checkpoint.restore` needs to resume."""

    def __init__(self, store: RunStore, run_id: str):
        self.store, self.run_id = store, run_id

    def on_epoch_end(self, fit: FitState, epoch: int, hist: dict) -> None:
        save_resume_state(
            self.store,
            self.run_id,
            fit.model,
            fit.opt,
            fit.sched,
            fit.gen,
            epoch,
            fit.selection,
            fit.seen,
            fit.train_seconds,
        )


class EpochEvents(Callback):
    """The progress events of a fit: the compile notice at the start, one ``epoch`` event per epoch."""

    def __init__(self, emit: Callable[..., None], compiling: bool = False):
        self.emit, self.compiling = emit, compiling

    def on_fit_start(self, fit: FitState) -> None:
        if self.compiling:
            self.emit({"type": "status", "phase": "compiling the training step (torch.compile, once)"}, persist=True)

    def on_epoch_end(self, fit: FitState, epoch: int, hist: dict) -> None:
        event = {"type": "epoch", **hist, "epochs": fit.epochs, "best_epoch": fit.selection.best_epoch + 1}
        self.emit(event, persist=True)


class StopEarly(Callback):
    """Stop after ``patience`` epochs without improvement (:class:`~medtl.monitors.EarlyStopping`); a
    resumed run counts the epochs since its best one before the interruption."""

    def __init__(self, patience: int, emit: Callable[..., None]):
        self.stopper, self.emit = EarlyStopping(patience), emit

    def on_fit_start(self, fit: FitState) -> None:
        best = fit.selection.best_epoch
        self.stopper.stale = fit.start_epoch - 1 - best if best >= 0 else 0

    def on_epoch_end(self, fit: FitState, epoch: int, hist: dict) -> None:
        if self.stopper.step(fit.improved):
            self.emit({"type": "status", "phase": f"early stop after epoch {epoch + 1}"}, persist=True)
            fit.should_stop = True


class Divergence(Callback):
    """At the end, ``fit.warning``: whether the run's whole history (:mod:`medtl.monitors`) went wrong."""

    def __init__(self, store: RunStore, run_id: str):
        self.store, self.run_id = store, run_id

    def on_fit_end(self, fit: FitState) -> None:
        fit.warning = divergence_warning(self.store.history(self.run_id), fit.chance_loss)


def standard(store: RunStore, run_id: str, emit: Callable[..., None], patience: int, compiling: bool) -> list[Callback]:
    """A run's own callbacks, in the order the module docstring gives (and why)."""
    return [
        PlateauSchedule(),
        SelectBest(),
        ResumeState(store, run_id),
        EpochEvents(emit, compiling),
        StopEarly(patience, emit),
        Divergence(store, run_id),
    ]
