"""What ``--compile`` (``torch.compile`` of the training step) buys per step, and what it costs once;
and, for the record, bf16 autocast on a CPU without native bf16 (why MedTL's CPU path stays fp32).

Run: ``python benchmarks/bench_compile.py``. Two copies of the same network (channels-last, as the
trainer runs it) take training steps in turn — eager, compiled, eager, compiled ... — on the same
batch, so that the drift of a shared machine hits both alike; the medians are compared. The
compilation time is the first compiled step (with inductor's on-disk cache, a repeat is faster).
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import markdown_table, write_result  # noqa: E402
from medtl.config import ModelConfig  # noqa: E402
from medtl.models import build  # noqa: E402

BATCH, STEPS = 32, 15
CASES = [
    ("resnet18", "layer2", 28),
    ("resnet18", "layer2", 64),
    ("resnet18", "layer2", 128),
    ("resnet50", "layer3", 64),
]


def row(backbone: str, cut: str, size: int) -> list:
    torch.manual_seed(0)
    torch._dynamo.reset()
    base = build(ModelConfig(backbone, "truncate", cut, "random"), size, 1).to(memory_format=torch.channels_last)
    x = torch.rand(BATCH, 1, size, size).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(BATCH) > 0.8).float()
    loss_fn = nn.BCEWithLogitsLoss()
    eager, compiled, bf16 = copy.deepcopy(base), copy.deepcopy(base), copy.deepcopy(base)
    fwd = {"eager": eager, "compiled": torch.compile(compiled), "bf16": bf16}
    opt = {
        k: torch.optim.AdamW(m.parameters(), 1e-3)
        for k, m in (("eager", eager), ("compiled", compiled), ("bf16", bf16))
    }

    def step(k: str) -> float:
        t = time.perf_counter()
        opt[k].zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=k == "bf16"):
            out = fwd[k](x)
        loss_fn(out.float().reshape(y.shape), y).backward()
        opt[k].step()
        return time.perf_counter() - t

    first = step("compiled")
    for _ in range(3):
        step("eager"), step("compiled"), step("bf16")
    times = {"eager": [], "compiled": [], "bf16": []}
    for _ in range(STEPS):
        for k in times:
            times[k].append(step(k))
    e, c, h = (statistics.median(times[k]) for k in ("eager", "compiled", "bf16"))
    out = [
        f"{backbone}@{cut}",
        size,
        f"{e * 1e3:.0f}",
        f"{c * 1e3:.0f}",
        f"{e / c:.2f}x",
        f"{first:.0f}",
        f"{e / h:.2f}x",
    ]
    print(out, file=sys.stderr)
    return out


def main() -> None:
    rows = [row(*c) for c in CASES]
    header = [
        "model",
        "px",
        "eager ms/step",
        "compiled ms/step",
        "speed-up",
        "first compiled step (s)",
        "bf16 autocast",
    ]
    text = (
        f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}; batch {BATCH}; "
        f"median of {STEPS} interleaved training steps (forward, backward, AdamW) on the same batch.\n\n"
        + markdown_table(header, rows)
    )
    write_result("compile", text)


if __name__ == "__main__":
    main()
