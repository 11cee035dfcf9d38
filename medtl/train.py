"""The training loop in parts: one epoch, one evaluation, the run around them.

``run(cfg, store, run_id)`` trains one :class:`~medtl.config.RunConfig` and writes everything the
run-folder contract asks for. It never raises for a failing run: errors (bad input, out of
memory, NaN loss) and cancellation are recorded in ``status.json`` with a readable message.
Progress goes to an optional callback (events as dicts, a few per second) and, throttled, to
``status.json``.

The parts, as torchvision's ``references/classification`` splits them: :func:`train_one_epoch`
and :func:`evaluate` here; what happens after each epoch (the plateau step, which epoch is kept,
``last.pt``, the epoch event, early stopping, the divergence check) as callbacks in
:mod:`medtl.callbacks`; :class:`Trainer` runs the loop and calls them in their order. After the
loop, the test phase is three steps: evaluation (the selected epoch on the validation and test
splits), profiling (:func:`profile`) and persistence (``predictions.npz``, ``metrics.json``).

On CUDA the loop never waits for the GPU per step: losses stay on the device and are checked
for NaN/inf every ``check_every`` steps and at the end of the epoch (the message names the first
bad batch); the host reads them only for the throttled progress events. Batches come from a
prefetching thread (:class:`~medtl.data.augment.Batches`); the time the loop waited for one is
``data_wait_s`` in each epoch's history record.

Under ``torchrun`` (``dist``, :mod:`medtl.distributed`) the step runs through DistributedDataParallel
on each rank's shard of the epoch, evaluation gathers every rank's predictions, and rank 0 alone
writes the run folder.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit, softmax
from torch import nn

from medtl import callbacks as hooks
from medtl import initialisations
from medtl import metrics as M
from medtl.checkpoint import ModelCheckpoint, load_resume_state, model_record, restore
from medtl.claims import Heartbeat
from medtl.config import RunConfig
from medtl.data import ImageSet, load
from medtl.data.augment import AugmentConfig, batches, normalization_stats
from medtl.distributed import SINGLE, Dist, RankStore
from medtl.models import build, param_groups
from medtl.models.profile import count_params, latency, macs
from medtl.runs import RunStore, StoreWriteError, now
from medtl.states import State

Callback = Callable[[dict], None]  # receives the progress events; the epoch hooks are medtl.callbacks.Callback


class Cancelled(Exception):
    """The run's cancel event was set; raised between batches."""


class NonFiniteLoss(RuntimeError):
    pass


class CompileFailed(RuntimeError):
    """``torch.compile`` could not compile the training step (e.g. no C++ compiler on a CPU machine)."""


@contextmanager
def _compile_errors(active: bool):
    """Around the first compiled step: turn a compiler failure into one readable message."""
    if not active:
        yield
        return
    try:
        yield
    except (NonFiniteLoss, Cancelled, MemoryError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - inductor raises many types; all mean the same to the user
        text = str(e).strip()
        first = text.splitlines()[0][:300] if text else ""
        raise CompileFailed(
            f"torch.compile could not compile the training step ({type(e).__name__}: {first}). "
            "Train without compile (the default); on a CPU, compile needs a working C++ compiler (gcc or clang)"
        ) from e


# Held while a run seeds the global generators and builds its network, so that two runs starting at
# once on two workers of one process still get the initialisation their seed gives (similarity.py
# rebuilds it the same way: seed_everything, then build).
_INIT_LOCK = threading.Lock()


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available here; use device 'auto' or 'cpu'")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' is not available here; use device 'auto' or 'cpu'")
    return torch.device(name)


def _autocast(device: torch.device):
    if device.type != "cuda":
        return nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast("cuda", dtype=dtype), scaler


def make_optimizer(model, cfg) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.lr, cfg.backbone_lr_mult)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(opt, cfg, steps_per_epoch: int):
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=0.1, patience=max(1, cfg.patience // 2)
        )
    if cfg.schedule == "constant":
        return None
    warm = cfg.warmup_epochs * steps_per_epoch
    total = max(cfg.epochs * steps_per_epoch, warm + 1)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def binary_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC (AP); multi-label: the mean over labels that have both classes."""
    y2, s2 = (y[:, None], score[:, None]) if y.ndim == 1 else (y, score)
    au, ap = [], []
    for k in range(y2.shape[1]):
        if 0 < y2[:, k].sum() < len(y2):
            au.append(M.auroc(y2[:, k], s2[:, k]))
            ap.append(M.average_precision(y2[:, k], s2[:, k]))
    return {"auroc": float(np.mean(au)) if au else float("nan"), "auprc": float(np.mean(ap)) if ap else float("nan")}


def scores(logits: np.ndarray, exclusive: bool) -> np.ndarray:
    """Probabilities from logits: softmax over classes for a multi-class task, else a sigmoid per output."""
    return softmax(logits, axis=1) if exclusive else expit(logits)


def make_loss(y_train: np.ndarray, exclusive: bool, device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The imbalance-aware loss for ``(logits, targets)``.

    Binary / multi-label: BCE-with-logits, ``pos_weight`` = negatives / positives per label in the
    training split. Multi-class (one of 3+ classes per image): cross-entropy with class weights
    n / (K * count), so that every class weighs as much in total."""
    if exclusive:
        counts = np.maximum(y_train.sum(axis=0), 1)
        weight = torch.tensor(len(y_train) / (len(counts) * counts), dtype=torch.float32, device=device)
        ce = nn.CrossEntropyLoss(weight=weight)
        return lambda logits, y: ce(logits, y.argmax(dim=1))
    pos = np.atleast_1d(y_train.sum(axis=0)).astype(np.float64)
    neg = len(y_train) - pos
    pos_weight = torch.tensor(neg / np.maximum(pos, 1), dtype=torch.float32, device=device)
    bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    return lambda logits, y: bce(logits.reshape(y.shape), y)


@torch.no_grad()
def predict(
    model: nn.Module,
    data: ImageSet,
    split: str,
    device,
    batch_size: int,
    channels_last=False,
    dist: Dist = SINGLE,
    progress: Callable[[int, int], None] | None = None,
) -> tuple:
    """Logits, targets and indices for a split (eval mode); :func:`scores` turns logits into probabilities.

    Under torchrun each rank predicts every ``world``-th image and all get the whole split, in index order.
    ``progress(batches done, batches)`` is called after each batch."""
    model.eval()
    ctx, _ = _autocast(torch.device(device))
    split_idx = data.splits[split]
    mine = split_idx[dist.rank :: dist.world]
    ys, ls, ix = [], [], []
    total = -(-mine.size // batch_size)
    for x, y, idx in batches(data, split, batch_size, device, channels_last=channels_last, index=mine):
        with ctx:
            ls.append(model(x).float())  # kept on the device: one copy to the host at the end, not one per batch
        ys.append(y)
        ix.append(idx)
        if progress:
            progress(len(ls), total)
    n_out = 1 if data.target is not None else len(data.label_names)
    if ls:
        logits, y, idx = torch.cat(ls).cpu().numpy(), torch.cat(ys).cpu().numpy(), np.concatenate(ix)
    else:  # a rank with no image of a tiny split
        y = data.y(split_idx[:0]).astype(np.float32)
        logits, idx = np.zeros((0, n_out), np.float32), split_idx[:0]
    logits, y, idx = dist.gather_predictions(logits, y, idx)
    return (logits[:, 0] if y.ndim == 1 else logits), y, idx


# --- the parts --------------------------------------------------------------------------------------


def make_step(forward, loss_fn, opt, sched, ctx, scaler) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """One optimisation step on a batch; returns the loss (a device tensor: reading it would sync)."""
    per_step = sched is not None and not isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with ctx:
            logits = forward(x)
            loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        if per_step:
            sched.step()
        return loss.detach()

    return step


def _check_finite(losses: list[torch.Tensor], lo: int, hi: int, epoch: int) -> None:
    """Raise :class:`NonFiniteLoss` naming the first batch in ``[lo, hi)`` whose loss is NaN/inf (one sync)."""
    if hi <= lo:
        return
    window = torch.stack(losses[lo:hi])
    bad = ~torch.isfinite(window)
    if bool(bad.any()):
        k = int(bad.nonzero()[0, 0])
        where = f"batch {lo + k + 1}" + (f" (checked batches {lo + 1}-{hi})" if hi - lo > 1 else "")
        raise NonFiniteLoss(
            f"The loss became {window[k].item()} at epoch {epoch + 1}, {where}: training diverged. "
            "Lower the learning rate (e.g. 10x)"
        )


def train_one_epoch(
    step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    loader: Iterable,
    epoch: int,
    check_every: int = 1,
    on_batch: Callable[[int, int, Callable[[], float]], None] | None = None,
    first_step_guard=nullcontext,
) -> tuple[float, int]:
    """Train over ``loader``'s ``(x, y, idx)`` batches; returns (mean loss per image, images seen).

    Losses stay on the device; they are checked for NaN/inf every ``check_every`` batches and at
    the end. ``on_batch(b, n_seen, mean_loss)`` is called after each batch (``b`` 0-based) with a
    function that reads the running mean loss (a host sync: call it only when reporting).
    ``first_step_guard()`` wraps the first step (turns compiler errors into one message)."""
    losses: list[torch.Tensor] = []  # loss x batch size per batch, on the device
    n_seen, checked = 0, 0
    for b, (x, y, _) in enumerate(loader):
        with first_step_guard() if b == 0 else nullcontext():
            loss = step(x, y)
        losses.append(loss * len(x))
        n_seen += len(x)
        if b + 1 - checked >= check_every:
            _check_finite(losses, checked, b + 1, epoch)
            checked = b + 1
        if on_batch is not None:
            on_batch(b, n_seen, lambda n=n_seen: float(torch.stack(losses).sum()) / n)
    _check_finite(losses, checked, len(losses), epoch)
    total = float(torch.stack(losses).float().cpu().double().sum()) if losses else 0.0
    return total / max(n_seen, 1), n_seen


def evaluate(
    model: nn.Module, data: ImageSet, split: str, loss_fn, device, batch_size: int, channels_last=False, dist=SINGLE
) -> dict:
    """Loss, AUROC and AUPRC of ``model`` on a split, and the *chance loss* (every logit 0) for reference."""
    logits, y, _ = predict(model, data, split, device, batch_size, channels_last=channels_last, dist=dist)
    lt, yt = torch.from_numpy(logits).to(device), torch.from_numpy(y).to(device)
    with torch.no_grad():
        loss, chance = float(loss_fn(lt, yt)), float(loss_fn(torch.zeros_like(lt), yt))
    return {"loss": loss, **binary_metrics(y, scores(logits, data.exclusive)), "chance_loss": chance}


def test_section(pred: dict, tc, exclusive: bool, label_names, run_id: str = "ID") -> dict:
    """``metrics.json``'s ``test`` from a run's predictions: counts, AUROC and AUPRC with their intervals,
    and every record of :data:`medtl.metrics.METRICS` (the operating point chosen on validation by
    ``tc.operating_point``, calibration before and after temperature scaling); several labels: the means
    over labels, images resampled for their intervals, and calibration per label."""
    y, score = pred["y_true"], pred["y_score"]
    yb = y if y.ndim == 1 else y.max(1)
    test = {**binary_metrics(y, score), "n": int(len(y)), "n_pos": int(yb.sum())}
    if y.ndim == 1:
        test.update(M.evaluate(pred, tc.operating_point, n_boot=tc.bootstrap, seed=tc.seed, run=run_id))
        return test
    ci = M.bootstrap_ci_labels(y, score, n_boot=tc.bootstrap, seed=tc.seed)
    test["auroc_ci"], test["auprc_ci"] = list(ci["auroc"]), list(ci["auprc"])
    test["labels"] = list(label_names)
    return {**test, **M.evaluate(pred, exclusive=exclusive)}


@dataclass
class _Throttle:
    every: float = 0.5
    last: float = -float("inf")

    def ready(self) -> bool:
        t = time.monotonic()
        if t - self.last >= self.every:
            self.last = t
            return True
        return False


class _Progress:
    """Batch events with images/s and ETA, at most one per ``every`` seconds (plus each epoch's last batch)."""

    def __init__(
        self, emit: Callable[[dict], None], epoch: int, epochs: int, steps: int, every: float = 0.25, world: int = 1
    ):
        self.emit, self.epoch, self.epochs, self.steps = emit, epoch, epochs, steps
        self.world = world  # processes training the run in step (torchrun): the run's rate is world x this one's
        self.throttle, self.t0 = _Throttle(every), time.perf_counter()
        self.t_first = self.t0

    def __call__(self, b: int, n_seen: int, mean_loss: Callable[[], float]) -> None:
        if b == 0:  # the first batch carries one-off costs (compilation, warm-up): rates start after it
            self.t_first = time.perf_counter()
            per_batch = self.t_first - self.t0
        elif not (self.throttle.ready() or b + 1 == self.steps):
            return
        else:
            per_batch = (time.perf_counter() - self.t_first) / b
        left = ((self.steps - b - 1) + (self.epochs - self.epoch - 1) * self.steps) * per_batch
        self.emit(
            {
                "type": "batch",
                "phase": "training",
                "epoch": self.epoch + 1,
                "epochs": self.epochs,
                "batch": b + 1,
                "batches": self.steps,
                "loss": mean_loss(),
                "images_per_s": self.world * n_seen / (b + 1) / max(per_batch, 1e-9),
                "eta_s": left,
            }
        )


@dataclass
class _Setup:
    """What a run builds once: its data, network, loss, optimiser and schedule, step and checkpoint selection."""

    device: torch.device
    data: ImageSet
    model: nn.Module  # the network itself (evaluation, checkpoints); ``step`` may run it through DDP/compile
    channels_last: bool
    loss_fn: Callable
    opt: torch.optim.Optimizer
    sched: object
    step: Callable
    steps: int
    selection: ModelCheckpoint
    batch_size: int  # images per step on this process (the global batch over the world size)


class Trainer:
    """One run: builds data and model from the config, trains, evaluates, records.

    ``callback`` receives the progress events; ``callbacks`` (:class:`medtl.callbacks.Callback`) are
    called at the start, after each epoch and at the end of the fit, after the run's own
    (:func:`medtl.callbacks.standard`)."""

    check_every_cuda = 50  # steps between NaN/inf checks on an accelerator (each check waits for the device)

    def __init__(
        self,
        cfg: RunConfig,
        store: RunStore,
        run_id: str,
        cancel: threading.Event | None = None,
        callback: Callback | None = None,
        dist: Dist = SINGLE,
        callbacks: Sequence[hooks.Callback] = (),
    ):
        # under torchrun only rank 0 writes the run folder; the others read it (resume, model.pt)
        self.dist = dist
        store = store if dist.main else RankStore(store)
        self.cfg, self.store, self.run_id = cfg, store, run_id
        self.cancel = cancel or threading.Event()
        self.callback = callback or (lambda e: None)
        self.callbacks = list(callbacks)
        self.throttle = _Throttle()
        self.folder = store.path(run_id)

    def emit(self, event: dict, persist: bool = False) -> None:
        self.callback(event)
        if persist or self.throttle.ready():
            self.store.write_status(self.run_id, progress={k: v for k, v in event.items() if k != "type"})

    def run(self, resume: bool = False) -> dict:
        """Train and evaluate; returns the final status. Never raises for a failing run (a run folder that
        cannot be written at all raises :class:`~medtl.runs.StoreWriteError`, after recording what it can)."""
        if not self.dist.main:
            return self._run(resume)
        # this process holds the claim on the run while it trains, and keeps it alive (other writers skip it)
        self.store.claims.adopt(self.cfg.key(), self.run_id)
        with Heartbeat(self.store.claims, (self.cfg.key(),)):
            return self._run(resume)

    def _run(self, resume: bool) -> dict:
        self.store.write_status(
            self.run_id,
            state=State.RUNNING,
            started=now(),
            pid=os.getpid(),
            host=socket.gethostname(),
            error=None,
            warning=None,
        )
        self.emit({"type": "status", "state": State.RUNNING, "phase": "loading data"}, persist=True)
        try:
            metrics = self._fit(resume)
        except Cancelled:
            return self._finish(State.CANCELLED, error="Cancelled by the user")
        except torch.cuda.OutOfMemoryError:
            return self._finish(State.FAILED, error="Out of GPU memory: lower the batch size or the image size")
        except (NonFiniteLoss, CompileFailed) as e:
            return self._finish(State.FAILED, error=str(e))
        except StoreWriteError as e:  # a full disk: say which file; record the failure where that still works
            with contextlib.suppress(OSError):
                return self._finish(State.FAILED, error=str(e))
            raise
        except (ValueError, FileNotFoundError, PermissionError, NotADirectoryError) as e:
            return self._finish(State.FAILED, error=str(e))
        except MemoryError:
            return self._finish(
                State.FAILED, error="Out of memory: lower the batch size, image size or number of images"
            )
        except Exception as e:  # noqa: BLE001 - a failing run must never take its caller down
            msg = str(e)
            if "out of memory" in msg.lower():
                return self._finish(State.FAILED, error="Out of memory: lower the batch size or the image size")
            return self._finish(State.FAILED, error=f"{type(e).__name__}: {msg}", traceback=traceback.format_exc())
        summary = {k: metrics["test"][k] for k in ("auroc", "auprc", "auroc_ci", "auprc_ci")}
        return self._finish(State.DONE, summary=summary, warning=metrics["val"]["warning"])

    def _finish(self, state: str, **extra) -> dict:
        status = self.store.write_status(self.run_id, state=state, finished=now(), **extra)
        self.callback({"type": "status", "state": state, **extra})
        return status

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    # --- the run ------------------------------------------------------------------------------------

    def _setup(self, device: torch.device) -> _Setup:
        """Data, the network as built, loss, optimiser, schedule and the step function."""
        cfg, tc = self.cfg, self.cfg.train
        data = load(
            cfg.data, progress=lambda d, t, what: self.emit({"type": "data", "phase": what, "done": d, "total": t})
        )
        self._check_cancel()
        n_out = 1 if data.target is not None else len(data.label_names)
        mcfg = cfg.model if cfg.model.num_outputs == n_out else cfg.model.replace(num_outputs=n_out)
        norm = None if initialisations.is_pretrained(mcfg.init) else normalization_stats(data)
        source = initialisations.state_dict(mcfg.init, mcfg.backbone, mcfg.weights, self.store)
        with _INIT_LOCK:  # the queue's workers share torch's global generator: seed and build as one step
            seed_everything(tc.seed)
            model = build(mcfg, data.image_size, data.channels, norm, source)
        record = model_record(mcfg, model, data.image_size, data.channels)  # what model.pt says was built
        # NHWC convolutions are faster on CUDA and with oneDNN on CPU (1.2-1.5x per step measured on a 2-core Xeon)
        channels_last = device.type in ("cuda", "cpu")
        model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
        forward = model
        loss_fn = make_loss(data.y(data.splits["train"]), data.exclusive, device)
        if self.dist.active:  # gradients averaged over the ranks at each step
            ids = [device.index] if device.type == "cuda" else None
            forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        # compile only the training step: one graph (fixed batch shape, train mode), compiled once;
        # evaluation and checkpoints use the eager module, whose parameters the compiled one shares
        forward = torch.compile(forward) if tc.compile else forward
        batch = self.dist.per_rank_batch(tc.batch_size)
        n_train = data.splits["train"].size // self.dist.world  # this rank's shard
        steps = max(1, n_train // batch if n_train > batch else 1)  # the last partial batch is dropped
        opt = make_optimizer(model, tc)
        sched = make_scheduler(opt, tc, steps)
        ctx, scaler = _autocast(device)
        step = make_step(forward, loss_fn, opt, sched, ctx, scaler)
        selection = ModelCheckpoint(self.store, self.run_id, tc.select_by, record, cfg.to_json())
        return _Setup(device, data, model, channels_last, loss_fn, opt, sched, step, steps, selection, batch)

    def _fit(self, resume: bool) -> dict:
        """The loop: each epoch trains and validates, its record is appended to the history, then the
        callbacks run in order; it ends after the last epoch or the one where a callback asked to stop."""
        tc = self.cfg.train
        gen = seed_everything(tc.seed)
        device = self.dist.device(pick_device(tc.device))
        if tc.threads:
            torch.set_num_threads(tc.threads)
        s = self._setup(device)
        fit = hooks.FitState(s.model, s.opt, s.sched, gen, s.selection, tc.epochs)
        if resume:
            self._restore(s, fit)
        callbacks = [*hooks.standard(self.store, self.run_id, self.emit, tc.patience, tc.compile), *self.callbacks]
        for cb in callbacks:
            cb.on_fit_start(fit)
        for epoch in range(fit.start_epoch, tc.epochs):
            hist, fit.chance_loss = self._epoch(s, epoch, gen, first=epoch == fit.start_epoch)
            fit.seen += hist.pop("n_seen")
            fit.train_seconds += hist["seconds"]
            self.store.append_history(self.run_id, hist)
            for cb in callbacks:
                cb.on_epoch_end(fit, epoch, hist)
            if fit.should_stop:
                break
        if fit.chance_loss is None:  # resumed after the last epoch: only the test evaluation was left
            fit.chance_loss = self._validate(s)["chance_loss"]
        for cb in callbacks:
            cb.on_fit_end(fit)
        return self._test(s, fit)

    def _restore(self, s: _Setup, fit: hooks.FitState) -> None:
        """Continue from ``last.pt`` where there is one: weights, optimiser, scheduler, random state, the
        selection's best epoch and the counters; the history is cut back to the epochs it holds."""
        self.store.remove_partial_checkpoints(self.run_id)  # left by a kill during a save
        ck = load_resume_state(self.store, self.run_id, s.device)
        if ck is None:
            return
        fit.start_epoch, fit.seen, fit.train_seconds = restore(ck, s.model, s.opt, s.sched, fit.gen, s.selection)
        self.store.truncate_history(self.run_id, fit.start_epoch)

    def _validate(self, s: _Setup) -> dict:
        return evaluate(
            s.model, s.data, "val", s.loss_fn, s.device, s.batch_size * 2, channels_last=s.channels_last, dist=self.dist
        )

    def _epoch(self, s: _Setup, epoch: int, gen: torch.Generator, first: bool) -> tuple[dict, float]:
        """Train one epoch and validate; returns the history record (with ``n_seen``) and the chance loss."""
        tc = self.cfg.train
        s.model.train()
        t0 = time.perf_counter()
        aug = AugmentConfig() if tc.augment else None
        # every rank draws the same permutation (and augmentation) from ``gen`` and keeps its own shard
        shard = (self.dist.rank, self.dist.world) if self.dist.active else None
        # on the CPU a check costs nothing, so every step is checked (and the message names the batch exactly)
        check_every = 1 if s.device.type == "cpu" else self.check_every_cuda
        with batches(
            s.data,
            "train",
            s.batch_size,
            s.device,
            shuffle=True,
            gen=gen,
            aug=aug,
            drop_last=True,
            channels_last=s.channels_last,
            shard=shard,
        ) as loader:  # closing stops the prefetching thread, also when the epoch is abandoned
            train_loss, n_seen = train_one_epoch(
                s.step,
                self._cancellable(loader),
                epoch,
                check_every,
                _Progress(self.emit, epoch, tc.epochs, s.steps, world=self.dist.world),
                lambda: _compile_errors(tc.compile and first),
            )
        seconds = time.perf_counter() - t0
        if self.dist.active:  # the run's loss and images over all ranks
            total, n = self.dist.sum(train_loss * n_seen, n_seen)
            train_loss, n_seen = total / max(n, 1), int(n)
        self._check_cancel()
        t_val = time.perf_counter()
        val = self._validate(s)
        hist = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_loss": val["loss"],
            "val_auroc": val["auroc"],
            "val_auprc": val["auprc"],
            "lr": s.opt.param_groups[-1]["lr"],
            "seconds": seconds,
            "val_seconds": time.perf_counter() - t_val,
            "images_per_s": n_seen / max(seconds, 1e-9),
            "data_wait_s": loader.wait_s,  # the training loop waiting for a batch (the producer was behind)
            "n_seen": n_seen,
        }
        return hist, val["chance_loss"]

    def _cancellable(self, loader: Iterable) -> Iterable:
        for item in loader:
            self._check_cancel()
            yield item

    def _test(self, s: _Setup, fit: hooks.FitState) -> dict:
        """The selected epoch's evaluation, profile and records (``metrics.json``); rank 0 writes, the
        other ranks return what it wrote."""
        split_preds = self._predict_splits(s)
        if not self.dist.main:  # rank 0 computes and writes the metrics; the others read them
            self.dist.barrier()
            return self.store.metrics(self.run_id)
        preds = prediction_arrays(split_preds, s.data.exclusive)
        tc = self.cfg.train
        self._status(f"confidence intervals ({tc.bootstrap} bootstrap resamples)")
        test = test_section(preds, tc, s.data.exclusive, s.data.label_names, self.run_id)
        self._status("profiling (parameters, MACs, single-image latency)")
        metrics = {
            "test": test,
            "val": {"best_epoch": s.selection.best_epoch + 1, "selected_by": tc.select_by, "warning": fit.warning},
            "train": self._train_section(s, fit),
            "model": profile(s.model, s.data.image_size, s.data.channels),
            "data": {"image_size": s.data.image_size, "counts": s.data.counts()},
        }
        self._persist(preds, metrics)
        self.dist.barrier()  # metrics.json is there for the other ranks
        return metrics

    def _status(self, phase: str, **extra) -> None:
        self.emit({"type": "status", "phase": phase, "final": True, **extra}, persist=True)

    def _predict_splits(self, s: _Setup) -> dict[str, tuple]:
        """Evaluation: the selected epoch's ``(logits, targets, indices)`` on the validation and test splits
        (validation too: thresholds and ties are judged on it, never on test); every rank takes part."""
        self.dist.barrier()  # rank 0 has written the last model.pt
        s.selection.load_best(s.model, s.device)
        out = {}
        for split in ("val", "test"):
            phase = f"evaluating on the {'validation' if split == 'val' else 'test'} split"
            self._status(phase)
            out[split] = predict(
                s.model,
                s.data,
                split,
                s.device,
                s.batch_size * 2,
                channels_last=s.channels_last,
                dist=self.dist,
                progress=lambda d, t, ph=phase: self.emit(
                    {"type": "status", "phase": ph, "final": True, "done": d, "total": t}
                ),
            )
        return out

    def _train_section(self, s: _Setup, fit: hooks.FitState) -> dict:
        """``metrics.json``'s ``train``: the training split's counts, the rate and time, where it ran."""
        y_train = s.data.y(s.data.splits["train"])
        return {
            "n": int(len(y_train)),
            "n_pos": int((y_train if y_train.ndim == 1 else y_train.max(1)).sum()),
            "images_per_s": fit.seen / max(fit.train_seconds, 1e-9),
            "seconds": fit.train_seconds,
            "device": str(s.device),
            "compiled": self.cfg.train.compile,
            "world_size": self.dist.world,
            "loss": "cross_entropy" if s.data.exclusive else "bce",
        }

    def _persist(self, preds: dict[str, np.ndarray], metrics: dict) -> None:
        """Persistence: ``predictions.npz`` and ``metrics.json``; then ``last.pt`` goes (the run is complete,
        ``model.pt`` is what stays)."""
        self.store.write_predictions(self.run_id, **preds)
        self.store.write_metrics(self.run_id, metrics)
        (self.folder / "last.pt").unlink(missing_ok=True)


def prediction_arrays(split_preds: dict[str, tuple], exclusive: bool) -> dict[str, np.ndarray]:
    """``predictions.npz``'s arrays from the ``(logits, targets, indices)`` of the test and validation splits."""
    logits, y, idx = split_preds["test"]
    v_logits, v_y, v_idx = split_preds["val"]
    return {
        "index": idx,
        "y_true": y,
        "y_score": scores(logits, exclusive),
        "val_index": v_idx,
        "val_y_true": v_y,
        "val_y_score": scores(v_logits, exclusive),
    }


def profile(model: nn.Module, image_size: int, channels: int) -> dict:
    """``metrics.json``'s ``model``: parameters, MACs and the single-image latency on the CPU (the model is
    moved there, in eval mode)."""
    cpu_model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    lat = latency(cpu_model, image_size, 1, channels)
    return {
        **count_params(cpu_model),
        "macs": macs(cpu_model, image_size, channels),
        "latency_ms": lat["median_ms"],
        "latency_iqr_ms": lat["iqr_ms"],
    }


def run(
    cfg: RunConfig, store: RunStore, run_id: str, cancel=None, callback=None, resume: bool = False, dist: Dist = SINGLE
) -> dict:
    """Train run ``run_id`` (already created in ``store``); returns its final status.

    ``dist``: this process's place in a torchrun group (:mod:`medtl.distributed`); one process by default."""
    return Trainer(cfg, store, run_id, cancel, callback, dist).run(resume)


def reevaluate(store: RunStore, run_id: str, device: str = "auto") -> dict:
    """Predict a finished run's validation and test splits again with its ``model.pt``, rewrite
    ``predictions.npz`` (validation predictions included) and the ``test`` section of ``metrics.json``
    (:func:`test_section`: the operating point, calibration, every metric record); the training, model
    and data sections are kept. For runs recorded before validation predictions were kept, or before a
    metric was added. Returns the new ``metrics.json``."""
    from medtl.checkpoint import MODEL_FILE, read
    from medtl.models import rebuild

    status = store.status(run_id)
    if status.get("state") != State.DONE:
        raise ValueError(f"Run {run_id} is {status.get('state')}: only a finished run can be evaluated again")
    path = store.path(run_id) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Run {run_id} has no {MODEL_FILE}: it cannot be evaluated again (train it again)")
    cfg = store.config(run_id)
    data = load(cfg.data)
    dev = pick_device(device)
    model = rebuild(read(path), cfg.model, cfg.data.image_size).to(dev)
    preds = {}
    for split, prefix in (("val", "val_"), ("test", "")):
        logits, y, idx = predict(model, data, split, dev, cfg.train.batch_size * 2)
        preds |= {f"{prefix}index": idx, f"{prefix}y_true": y, f"{prefix}y_score": scores(logits, data.exclusive)}
    store.write_predictions(run_id, **preds)
    metrics = store.metrics(run_id) or {}
    metrics["test"] = {
        **metrics.get("test", {}),
        **test_section(preds, cfg.train, data.exclusive, data.label_names, run_id),
    }
    store.write_metrics(run_id, metrics)
    return metrics
