"""How big and how fast a model is: parameters, MACs and CPU latency.

MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (multiply-accumulates = FLOPs / 2,
counting convolutions and matrix products as the usual tables do).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> dict[str, int]:
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def macs(model: nn.Module, image_size: int, in_channels: int = 1) -> int:
    """Multiply-accumulates of one forward pass on one image."""
    x = torch.zeros(1, in_channels, image_size, image_size)
    was = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was)
    return int(counter.get_total_flops() // 2)


def latency(
    model: nn.Module,
    image_size: int,
    batch: int = 1,
    in_channels: int = 1,
    min_time: float = 0.5,
    warmup: float = 0.1,
    min_samples: int = 10,
) -> dict[str, float]:
    """Per-image CPU latency of an eval-mode forward pass: median and interquartile range, in ms.

    Measured to be repeatable on a busy machine: single-threaded (thread counts differ between
    machines; the caller's setting is restored), after ``warmup`` seconds of untimed passes
    (allocator and oneDNN kernel caches), then timed with a ``torch.utils.benchmark.Timer`` for at
    least ``min_time`` seconds and ``min_samples`` samples of at least 2 ms each (short passes
    are repeated within a sample), and reported as the median with its spread. The clock is the
    thread's CPU time (``time.thread_time``): on an idle machine it equals the wall time of the
    compute-bound pass, and on a loaded one it leaves out the time other processes held the core
    (wall-clock medians varied 1.3-8.6 ms for one model at a load average of 14 on 2 cores;
    thread time 1.0-1.2 ms)."""
    from torch.utils import benchmark

    x = torch.rand(batch, in_channels, image_size, image_size)
    was, threads = model.training, torch.get_num_threads()
    model.eval()
    try:
        torch.set_num_threads(1)
        with torch.inference_mode():
            model(x)
            n, t0 = 0, time.perf_counter()
            while n < 3 or time.perf_counter() - t0 < warmup:
                model(x)
                n += 1
            per_pass = (time.perf_counter() - t0) / n
        number = max(1, int(2e-3 / per_pass))  # passes per sample, so that timer overhead is negligible
        timer = benchmark.Timer(
            "with torch.inference_mode(): model(x)",
            globals={"model": model, "x": x, "torch": torch},
            timer=time.thread_time,
            num_threads=1,
        )
        times, t0 = [], time.perf_counter()
        while len(times) < min_samples or time.perf_counter() - t0 < min_time:
            times.append(timer.timeit(number).median)
            if time.perf_counter() - t0 > 20 * max(min_time, per_pass * number * min_samples):
                break  # a pathological machine: stop with what there is rather than hang
    finally:
        torch.set_num_threads(threads)
        model.train(was)
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    return {"median_ms": float(1e3 * med / batch), "iqr_ms": float(1e3 * (q3 - q1) / batch), "samples": len(times)}


def latency_ms(model: nn.Module, image_size: int, batch: int = 1, in_channels: int = 1, min_time: float = 0.5) -> float:
    """Median per-image CPU latency in ms (see :func:`latency`)."""
    return latency(model, image_size, batch, in_channels, min_time)["median_ms"]


def profile(
    model: nn.Module, image_size: int, in_channels: int = 1, batches: tuple[int, ...] = (1, 32), min_time: float = 0.5
) -> dict[str, float]:
    """Parameters, MACs and latency per image at each batch size (``latency_ms_b1``, ...)."""
    out: dict[str, float] = {**count_params(model), "macs": macs(model, image_size, in_channels)}
    for b in batches:
        out[f"latency_ms_b{b}"] = latency_ms(model, image_size, b, in_channels, min_time)
    return out


def cut_table(backbone: str, image_size: int = 224, num_outputs: int = 1) -> list[dict]:
    """Parameters and MACs of the backbone truncated at each published cut, with the family's head.

    One forward pass of the full backbone under ``FlopCounterMode`` gives every stage's MACs;
    a truncated model's cost is the sum over its stages plus the head. A test checks this against
    building each truncated model.
    """
    from medtl.models import registry

    family = registry.get_spec(backbone).family
    full = registry.get_spec(backbone).builder()
    stages = family.stages(full)
    points = [p for p in registry.cut_points(backbone) if image_size >= registry.min_input_size(backbone, p.name)]
    if not points:
        raise ValueError(
            f"{backbone} needs images of at least {registry.min_input_size(backbone, registry.cut_points(backbone)[0].name)} px "
            f"for any cut. Got image_size={image_size}"
        )
    model = family.truncate(full, points[-1].stage).eval()  # the deepest cut this image size allows
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, image_size, image_size))
    flops = counter.get_flop_counts()
    root = type(model).__name__
    stage_macs = [sum(flops.get(f"{root}.{path}", {}).values()) // 2 for path, _ in stages]
    stage_params = [sum(p.numel() for p in m.parameters()) for _, m in stages]
    stage_params[0] += sum(full.get_parameter(n).numel() for n in family.loose_params)  # a ViT's tokens
    rows = []
    for point in points:
        k = point.stage + 1
        pre = sum(p.numel() for _, m in family.pre_logits(full, point) for p in m.parameters())  # a norm
        head_params = pre + point.channels * num_outputs + num_outputs
        rows.append(
            {
                "name": point.name,
                "level": point.level,
                "channels": point.channels,
                "reduction": point.reduction,
                "params": sum(stage_params[:k]) + head_params,
                "macs": int(sum(stage_macs[:k]) + point.channels * num_outputs),
            }
        )
    return rows
