"""Data-parallel training of one run with ``torchrun``: the process-group glue, kept out of the trainer.

``torchrun --standalone --nproc-per-node N -m medtl train ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`session` sees them and joins the process group (NCCL
on CUDA, one GPU per process; gloo on the CPU). Then:

- every rank draws the same shuffled permutation of the training split (same seed) and keeps its
  part, :func:`shard_indices`: disjoint, equally long, so all ranks take the same number of steps;
- ``--batch-size`` stays the *global* batch: each rank takes ``batch_size / world_size`` images a
  step, and DDP averages the gradients, so a run's optimisation matches a one-process run with the
  same batch size (and the run's key does not depend on how many processes trained it);
- rank 0 alone writes the run folder; other ranks see it through :class:`RankStore`, which reads
  and drops writes; every rank resumes from the same ``last.pt``;
- validation and test predictions are gathered from all ranks and ordered by image index, so the
  metrics cover the whole split (:meth:`Dist.gather_predictions`).

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) :data:`SINGLE` is used and nothing here touches
``torch.distributed``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as td


def shard_indices(perm: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s part of a permutation: every ``world``-th entry from ``rank``, cut to
    ``len(perm) // world`` so that all ranks have as many (the remainder, under ``world`` images,
    is left out of this epoch; the next epoch's permutation leaves out others)."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank must be in [0, world_size) and world_size at least 1. Got rank={rank}, world={world}")
    return np.asarray(perm)[rank::world][: len(perm) // world]


@dataclass(frozen=True)
class Dist:
    """This process's place in the group: ``rank`` of ``world`` processes, on GPU ``local_rank``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """The one process that writes the run folder and prints."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process: CUDA becomes ``cuda:<local_rank>``."""
        if self.active and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def per_rank_batch(self, batch_size: int) -> int:
        """Images per step on each rank for a global ``batch_size``."""
        if batch_size % self.world:
            raise ValueError(
                f"batch_size must be a multiple of the number of processes ({self.world}): it is the global "
                f"batch, split evenly over them. Got {batch_size}"
            )
        return batch_size // self.world

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            td.barrier()

    def sum(self, *values: float) -> tuple[float, ...]:
        """The sums over ranks of a few numbers (float64)."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        if td.get_backend() == "nccl":
            t = t.cuda()
        td.all_reduce(t)
        return tuple(float(v) for v in t.cpu())

    def gather_predictions(
        self, logits: np.ndarray, y: np.ndarray, idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All ranks' ``(logits, targets, indices)`` of a split, ordered by image index (every rank gets all)."""
        if not self.active:
            return logits, y, idx
        parts: list = [None] * self.world
        td.all_gather_object(parts, (logits, y, idx))
        logits, y, idx = (np.concatenate([p[k] for p in parts]) for k in range(3))
        order = np.argsort(idx, kind="stable")
        return logits[order], y[order], idx[order]


SINGLE = Dist()


def from_env(env: dict | None = None) -> Dist:
    """The torchrun settings of this process, or :data:`SINGLE` outside torchrun."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    return Dist(int(env["RANK"]), world, int(env.get("LOCAL_RANK", env["RANK"])))


def _wants_cuda(device: str) -> bool:
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


@contextmanager
def session(device: str = "auto") -> Iterator[Dist]:
    """Join the torchrun process group for the body (NCCL for CUDA, gloo otherwise); yields this
    process's :class:`Dist` (:data:`SINGLE`, and no group, outside torchrun)."""
    dist = from_env()
    if not dist.active:
        yield dist
        return
    cuda = _wants_cuda(device)
    if cuda:
        torch.cuda.set_device(dist.local_rank)  # before the group: NCCL binds each rank to its GPU
    td.init_process_group("nccl" if cuda else "gloo")
    try:
        yield dist
    finally:
        td.destroy_process_group()


class RankStore:
    """A rank other than 0's view of the run folder: reads pass through to the :class:`RunStore`,
    writes are dropped (rank 0 writes the one copy; the other ranks hold the same state)."""

    _WRITES = frozenset(
        {
            "create",
            "append_history",
            "truncate_history",
            "write_metrics",
            "write_predictions",
            "remove_partial_checkpoints",
            "delete",
        }
    )

    def __init__(self, store):
        self._store = store

    def save_checkpoint(self, run_id: str, name: str, obj: Any):
        return self._store.path(run_id) / name

    def write_status(self, run_id: str, **updates: Any) -> dict:
        """The status as rank 0 is writing it (read, merged, not written)."""
        return {**self._store.status(run_id), **updates}

    def __getattr__(self, name: str):
        if name in self._WRITES:
            return lambda *a, **k: None
        return getattr(self._store, name)
