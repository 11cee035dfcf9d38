"""How long runs will take on this machine: measured throughput per distinct model, times the work.

The throughput of each distinct (backbone, strategy, cut, image size, batch size, channels) is
measured with a few real training steps (forward, backward, optimiser step) and a few evaluation
passes on a random batch; a run's time is then ``epochs x (train images / train speed + validation
images / eval speed) + (validation + test images) / eval speed`` plus what every run pays besides
(:func:`overhead`: start-up, a checkpoint per epoch, the bootstrap intervals, profiling).
Once runs of a study have finished, their measured wall time calibrates the rest
(:func:`calibration`): the estimate of what is left is the model's times the ratio measured so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch

from medtl.config import DataConfig, ModelConfig, RunConfig


def speed_key(cfg: RunConfig, in_channels: int = 1) -> tuple:
    """What the speed of a run depends on (not its initialisation, seed or training size)."""
    m = cfg.model
    return (m.backbone, m.strategy, m.cut, cfg.data.image_size, cfg.train.batch_size, in_channels)


def measure(
    model: ModelConfig,
    image_size: int,
    batch_size: int,
    in_channels: int = 1,
    device: str = "cpu",
    steps: int = 2,
) -> dict[str, float]:
    """Images per second of training steps and of evaluation passes at the run's own batch size (a CPU's
    images per second at batch 8 were half those at batch 32), after one warm-up of each.

    The model is built with random weights (the speed does not depend on the initialisation, and
    nothing needs to be downloaded).
    """
    from medtl.models import build

    if steps < 1:
        raise ValueError(f"steps must be at least 1. Got {steps}")
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)
    net = build(model.replace(init="random"), image_size, in_channels).to(dev)
    x = torch.rand(batch_size, in_channels, image_size, image_size, generator=g).to(dev)
    y = torch.randint(0, 2, (batch_size, model.num_outputs), generator=g).float().to(dev)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x).reshape(y.shape), y)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def eval_step():
        net(x)

    out = {}
    for name, step, mode in (("train_ips", train_step, True), ("eval_ips", eval_step, False)):
        net.train(mode)
        step()  # warm-up: allocator, kernels
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(dev)
        out[name] = batch_size * steps / max(time.perf_counter() - t0, 1e-9)
    return out


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def estimate(
    configs: Iterable[RunConfig],
    counts: Callable[[DataConfig], dict],
    speed: Callable[[RunConfig], dict[str, float]],
) -> dict:
    """The estimated training time of ``configs`` run one after the other.

    Args:
        counts: a DataConfig's split sizes, ``{"train": {"n": ...}, "val": ..., "test": ...}``.
        speed: a run's ``{"train_ips", "eval_ips"}`` (e.g. :func:`measure` of its :func:`speed_key`, cached).

    Returns:
        ``{"seconds": total, "runs": n, "models": [per distinct model: label, runs, images, speeds, seconds]}``.
    """
    models: dict[tuple, dict] = {}
    total = 0.0
    n = 0
    for cfg in configs:
        c = counts(cfg.data)
        s = speed(cfg)
        ep = cfg.train.epochs
        train_images = ep * c["train"]["n"]
        eval_images = (ep + 1) * c["val"]["n"] + c["test"]["n"]
        secs = train_images / s["train_ips"] + eval_images / s["eval_ips"] + overhead(cfg, c["test"]["n"])
        m = cfg.model
        row = models.setdefault(
            speed_key(cfg),
            {
                "model": f"{m.backbone} {m.strategy}@{m.cut} · {cfg.data.image_size} px · batch {cfg.train.batch_size}",
                "runs": 0,
                "train images": 0,
                "train img/s": s["train_ips"],
                "eval img/s": s["eval_ips"],
                "seconds": 0.0,
            },
        )
        row["runs"] += 1
        row["train images"] += train_images
        row["seconds"] += secs
        total += secs
        n += 1
    return {"seconds": total, "runs": n, "models": list(models.values())}


# What every run pays besides its training and evaluation passes, measured on the 2-core CPU of
# benchmarks/bench_estimate.py: start-up (loading the cached data, building the model, status writes),
# one checkpoint (model + optimiser state) per epoch, the stratified bootstrap of the test metrics, and
# profiling (parameters, MACs, at least 0.5 s of single-threaded latency timing).
START_S = 0.5
CHECKPOINT_S = 0.1
BOOTSTRAP_S_PER_IMAGE = 2.5e-6  # per resample and test image (two metrics, vectorised)
PROFILE_S = 0.7


def overhead(cfg: RunConfig, n_test: int) -> float:
    """Seconds a run spends outside its training and evaluation passes (see the constants above)."""
    return START_S + cfg.train.epochs * CHECKPOINT_S + cfg.train.bootstrap * n_test * BOOTSTRAP_S_PER_IMAGE + PROFILE_S


def run_seconds(status: dict) -> float | None:
    """The wall time a finished run took (``started`` to ``finished`` in its status.json), or None."""
    import datetime as dt

    try:
        t0, t1 = dt.datetime.fromisoformat(status["started"]), dt.datetime.fromisoformat(status["finished"])
    except (KeyError, TypeError, ValueError):
        return None
    return max((t1 - t0).total_seconds(), 0.0)


def calibration(pairs: Iterable[tuple[float, float | None]]) -> tuple[float, int]:
    """The ratio of measured to estimated seconds over finished runs ``(estimated, measured)``, and how
    many runs it rests on; ``(1.0, 0)`` before any has finished (then the model stands alone)."""
    pairs = [(e, m) for e, m in pairs if m is not None and e > 0]
    if not pairs:
        return 1.0, 0
    return sum(m for _, m in pairs) / sum(e for e, _ in pairs), len(pairs)


def for_runs(
    todo: Iterable[RunConfig],
    finished: Iterable[tuple[RunConfig, dict]],
    counts: Callable[[DataConfig], dict],
    speed: Callable[[RunConfig], dict[str, float]],
    device: str | None = None,
) -> dict:
    """:func:`estimate` of ``todo``, calibrated by the runs of ``finished`` ((config, status.json) of done
    runs, e.g. a study's) that ran on ``device``: ``seconds`` is the model's estimate times the measured
    ratio; ``model_seconds`` the model alone; ``ratio`` and ``calibrated_on`` (runs) say how."""
    est = estimate(todo, counts, speed)
    mine = [(c, st) for c, st in finished if device is None or st.get("device") in (None, device)]
    ratio, n = calibration((estimate([c], counts, speed)["seconds"], run_seconds(st)) for c, st in mine)
    return {
        **est,
        "model_seconds": est["seconds"],
        "seconds": est["seconds"] * ratio,
        "ratio": ratio,
        "calibrated_on": n,
    }


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 05 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
