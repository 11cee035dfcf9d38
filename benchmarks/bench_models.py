"""Size and speed of truncated networks: params, MACs and CPU latency per block-level cut.

Run: ``python benchmarks/bench_models.py``. For ResNet50 and DenseNet121 at 64 and 224 px, each
block-level cut with a GAP + one-logit head; latency is the median per-image time of eval-mode
forward passes at batch 1 and 32, with the full network (``full``) as the baseline in the same run.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import markdown_table, write_result  # noqa: E402
from medtl.config import ModelConfig  # noqa: E402
from medtl.models import build, registry  # noqa: E402
from medtl.models.profile import profile  # noqa: E402


def main() -> None:
    torch.manual_seed(0)
    rows = []
    for backbone in ("resnet50", "densenet121"):
        for size in (64, 224):
            cuts = [p.name for p in registry.cut_points(backbone) if p.level in ("block", "full")]
            results = {}
            for cut in cuts:
                cfg = ModelConfig(backbone, "finetune" if cut == "full" else "truncate", cut, "random")
                model = build(cfg, size)
                results[cut] = profile(model, size, batches=(1, 32), min_time=1.0)
            base = results["full"]
            for cut, r in results.items():
                rows.append(
                    [
                        backbone,
                        size,
                        cut,
                        f"{r['params'] / 1e6:.2f} M",
                        f"{r['macs'] / 1e9:.3f} G",
                        f"{r['latency_ms_b1']:.1f}",
                        f"{r['latency_ms_b32']:.2f}",
                        f"{base['latency_ms_b32'] / r['latency_ms_b32']:.1f}x",
                    ]
                )
            print(f"done {backbone} {size}px", file=sys.stderr)
    header = ["backbone", "px", "cut", "params", "MACs", "ms/img b1", "ms/img b32", "speed-up vs full (b32)"]
    text = (
        f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        "median per-image latency, eval mode, full network measured in the same run.\n\n" + markdown_table(header, rows)
    )
    write_result("models", text)


if __name__ == "__main__":
    main()
