"""The training data path on tensors: batches from uint8 arrays, augmentation on the device.

Images stay uint8 until a batch is on its device; augmentation is one batched affine warp
(random resized crop with a mild scale range, small rotation, optional horizontal flip) through
``affine_grid``/``grid_sample``, driven by a seeded ``torch.Generator``. Normalisation is done by
the model's input adapter (:class:`medtl.models.transfer.InputAdapter`), with the statistics of
:func:`normalization_stats`.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from medtl.data.imageset import ImageSet


@dataclass(frozen=True)
class AugmentConfig:
    scale: tuple[float, float] = (0.85, 1.0)  # area kept by the random crop
    ratio: tuple[float, float] = (0.9, 1.1)  # aspect ratio of the crop
    degrees: float = 7.0
    hflip: bool = False  # radiographs have a left and a right: off by default


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Random resized crop + rotation (+ flip) of a float batch (B, C, H, W), in one warp."""
    b = x.shape[0]
    r = torch.rand(b, 5, generator=gen, device="cpu")
    area = cfg.scale[0] + (cfg.scale[1] - cfg.scale[0]) * r[:, 0]
    log_ratio = math.log(cfg.ratio[0]) + (math.log(cfg.ratio[1]) - math.log(cfg.ratio[0])) * r[:, 1]
    ratio = torch.exp(log_ratio)
    sx, sy = torch.sqrt(area * ratio).clamp(max=1), torch.sqrt(area / ratio).clamp(max=1)
    tx, ty = (1 - sx) * (2 * r[:, 2] - 1), (1 - sy) * (2 * r[:, 3] - 1)
    theta_r = (2 * r[:, 4] - 1) * math.radians(cfg.degrees)
    cos, sin = torch.cos(theta_r), torch.sin(theta_r)
    flip = torch.ones(b)
    if cfg.hflip:
        flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.stack(
        [torch.stack([cos * sx * flip, -sin * sy, tx], 1), torch.stack([sin * sx * flip, cos * sy, ty], 1)], 1
    )
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def to_float(batch_u8: np.ndarray, device: torch.device | str, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 in [0, 1] on ``device`` (the copy moves 1 byte a pixel)."""
    t = torch.from_numpy(np.ascontiguousarray(batch_u8))
    dev = torch.device(device)
    if dev.type == "cuda":
        t = t.pin_memory().to(dev, non_blocking=True)
    x = t.to(dev).float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class Batches:
    """An iterable of ``(images, targets, indices)`` batches, gathered ``prefetch`` batches ahead.

    A background thread gathers each batch's (sorted) indices from the uint8 array (a memory map
    reads faster in index order) into reused buffers and makes them tensors: on CUDA it copies a
    pinned buffer to the device with ``non_blocking=True`` on a side stream, so the copy overlaps
    the training step; on the CPU it also converts to float. The consuming thread only converts
    (CUDA) and augments: augmentation draws from ``gen`` in the consumer, after the shuffle, in
    batch order, exactly as a synchronous loop would, so a seed gives the same batches with or
    without prefetching. ``wait_s`` is the time the consumer waited for the producer.

    Use it as a context manager (or call :meth:`close`): closing stops and joins the thread, also
    when the consumer abandons the epoch. An exception in the producer is raised in the consumer.
    ``prefetch=0`` gathers in the consuming thread (no thread at all)."""

    def __init__(
        self,
        data: ImageSet,
        split: str,
        batch_size: int,
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        gen: torch.Generator | None = None,
        aug: AugmentConfig | None = None,
        drop_last: bool = False,
        channels_last: bool = False,
        prefetch: int = 2,
        index: np.ndarray | None = None,
        shard: tuple[int, int] | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1. Got {batch_size}")
        if prefetch < 0:
            raise ValueError(f"prefetch must be 0 (no thread) or more batches. Got {prefetch}")
        from medtl.distributed import shard_indices  # no process group needed: a pure function

        idx = data.splits[split] if index is None else np.asarray(index)
        if shuffle:  # drawn here, in the consumer, before any augmentation: the generator's order is kept
            idx = idx[torch.randperm(idx.size, generator=gen).numpy()]
        if shard is not None:  # this rank's part of the (shared) permutation
            idx = shard_indices(idx, *shard)
        stop = idx.size - (idx.size % batch_size if drop_last and idx.size > batch_size else 0)
        self.chunks = [np.sort(idx[s : s + batch_size]) for s in range(0, stop, batch_size)]
        self.data, self.device, self.gen, self.aug = data, torch.device(device), gen, aug
        self.channels_last, self.prefetch, self.batch_size = channels_last, prefetch, batch_size
        self.cuda = self.device.type == "cuda"
        if self.cuda and self.device.index is None:  # the producer thread's own current device would be 0
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.wait_s = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=max(prefetch, 1))
        # prefetch batches in the queue, one being consumed, one being filled
        self._slots = [None] * (prefetch + 2)
        self._stream = torch.cuda.Stream(self.device) if self.cuda and prefetch else None

    def __len__(self) -> int:
        return len(self.chunks)

    # --- producer ---------------------------------------------------------------------------------

    def _slot(self, k: int, n: int):
        """Reused host buffers (pinned on CUDA) for the ``k``-th batch of ``n`` images."""
        i = k % len(self._slots)
        slot = self._slots[i]
        if slot is None:
            shape_x = (self.batch_size, *self.data.images.shape[1:])
            y0 = self.data.y(self.chunks[0][:1])
            shape_y = (self.batch_size, *y0.shape[1:])
            x = torch.empty(shape_x, dtype=torch.uint8, pin_memory=self.cuda)
            y = torch.empty(shape_y, dtype=torch.float32, pin_memory=self.cuda)
            slot = self._slots[i] = {"x": x, "y": y, "done": None}
        if slot["done"] is not None:  # the device copy that last read this buffer must be finished
            slot["done"].synchronize()
        return slot["x"][:n], slot["y"][:n], slot

    def _make(self, k: int):
        """Batch ``k``: gathered into a buffer, on the device (uint8 on CUDA, float on the CPU)."""
        b = self.chunks[k]
        xb, yb, slot = self._slot(k, len(b))
        np.take(self.data.images, b, axis=0, out=xb.numpy())
        yb.numpy()[...] = self.data.y(b)
        if self.cuda:
            with torch.cuda.stream(self._stream) if self._stream is not None else nullcontext():
                x, y = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
                slot["done"] = torch.cuda.Event()
                slot["done"].record()  # on the stream that copies: the buffer is reused only after it
            return x, y, b, slot["done"]
        x = xb.to(self.device).float().div_(255)  # a new tensor (CPU, MPS): the buffer is free again at once
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, yb.to(self.device, copy=True), b, None

    def _put(self, item) -> bool:
        """Hand ``item`` over; False where the consumer closed meanwhile (a bounded wait, never a hang)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for k in range(len(self.chunks)):
                if self._stop.is_set() or not self._put(self._make(k)):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(_Failed(e))

    # --- consumer ---------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        if self._thread is not None:
            raise RuntimeError("a Batches object is iterated once; make a new one for another pass")
        if self.prefetch:
            self._thread = threading.Thread(target=self._produce, name="medtl-batches", daemon=True)
            self._thread.start()
        try:
            for k in range(len(self.chunks)):
                if self.prefetch:
                    t = time.perf_counter()
                    item = self._queue.get()
                    self.wait_s += time.perf_counter() - t
                    if isinstance(item, _Failed):
                        raise item.error
                else:
                    item = self._make(k)
                yield self._finish(*item)
        finally:
            self.close()

    def _finish(self, x, y, b, copied):
        if self.cuda:
            if self._stream is not None:  # the side stream's copy must land before the step reads it
                main = torch.cuda.current_stream(self.device)
                main.wait_event(copied)
                x.record_stream(main)  # allocated on the side stream, used on this one
                y.record_stream(main)
            x = x.float().div_(255)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        if self.aug is not None:
            x = augment(x, self.aug, self.gen)
        return x, y, b

    def close(self) -> None:
        """Stop the producer and wait for it (idempotent)."""
        self._stop.set()
        th = self._thread
        if th is not None:
            th.join()  # a producer blocked on a full queue sees the stop within its put timeout

    def __enter__(self) -> Batches:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class _Failed:
    error: BaseException


# ``(images, targets, indices)`` batches of a split: the name the trainer, the advisor and the tests call
batches = Batches


def normalization_stats(data: ImageSet, max_images: int = 2000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] of (a sample of) the training split."""
    idx = data.splits["train"]
    if idx.size > max_images:
        idx = np.sort(np.random.default_rng(0).choice(idx, max_images, replace=False))
    x = np.asarray(data.images[idx], np.float32) / 255
    return x.mean(axis=(0, 2, 3)).tolist(), np.maximum(x.std(axis=(0, 2, 3)), 1e-3).tolist()
