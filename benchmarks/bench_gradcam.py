"""Grad-CAM time for 16 images at 128 px on the CPU (maps only, and the page's full path with
scores), for truncated and full networks.

Run: ``python benchmarks/bench_gradcam.py``.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import best_of, markdown_table, write_result  # noqa: E402
from medtl import cam, localisation  # noqa: E402
from medtl.config import ModelConfig  # noqa: E402
from medtl.models import build  # noqa: E402


def main() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 1, 128, 128)
    masks = torch.zeros(16, 128, 128, dtype=torch.bool).numpy()
    masks[:, 60:70, 60:70] = True
    rows = []
    for backbone, strategy, cut in (
        ("resnet18", "truncate", "layer2"),
        ("resnet50", "truncate", "layer3"),
        ("resnet50", "finetune", "full"),
        ("densenet121", "finetune", "full"),
    ):
        m = cam.ready(build(ModelConfig(backbone, strategy, cut, "random"), 128))
        maps_only = best_of(lambda m=m: cam.gradcam(m, x), repeat=3)

        def full(m=m):  # as medtl.explain.scores: pointing on the native maps, energy on the upsampled ones
            native = cam.gradcam_native(m, x)
            size = native.shape[-2:]
            localisation.pointing_game(native, masks)
            localisation.energy_in_mask(cam.upsample(native, tuple(x.shape[-2:])), masks)
            localisation.pointing_game_chance(masks, map_size=size)
            localisation.pointing_game_ceiling(masks, map_size=size)
            localisation.energy_in_mask_chance(masks)

        rows.append([f"{backbone} {strategy}@{cut}", f"{maps_only:.2f} s", f"{best_of(full, repeat=3):.2f} s"])
        print(rows[-1], file=sys.stderr)
    text = (
        f"16 images at 128 px, batch 16, {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads; "
        "best of 3.\n\n"
        + markdown_table(["model", "Grad-CAM maps", "maps + pointing game + energy + chance levels + ceiling"], rows)
    )
    write_result("gradcam", text)


if __name__ == "__main__":
    main()
