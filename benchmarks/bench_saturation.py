"""What the saturation check costs: counts stored with the cache vs counting every image at each load.

Run: ``python benchmarks/bench_saturation.py [--n 20000] [--size 64]``. SynthCXR images; the
cache is built once (untimed), then a cached ``load`` alone, ``data_warnings`` on the stored
per-image counts, and counting the memory-mapped images afresh (what a load would pay without
stored counts) are timed, best of 5. The build-time cost of the counts is timed on the same array.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import HERE, best_of, markdown_table, write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args()
    os.environ["MEDTL_CACHE"] = str(HERE / "_work" / f"cache-{time.time_ns()}")

    import numpy as np

    from medtl import data as D
    from medtl.config import DataConfig
    from medtl.data.saturation import pixel_counts

    cfg = DataConfig(n_images=a.n, image_size=a.size)
    ds = D.load(cfg)  # builds the cache (generation and counts), untimed
    images = np.asarray(ds.images)
    rows = [
        ["cached load (memory-mapped), for scale", best_of(lambda: D.load(cfg))],
        ["data_warnings on the stored counts (every load)", best_of(lambda: D.data_warnings(ds))],
        [
            "counting the memory-mapped images (without stored counts, every load)",
            best_of(lambda: pixel_counts(ds.images)),
        ],
        ["counting the images in memory (once, at cache build)", best_of(lambda: pixel_counts(images))],
    ]
    text = (
        f"SynthCXR, {a.n:,} images at {a.size} px; {platform.machine()}, {os.cpu_count()} cores, numpy "
        f"{np.__version__}; best of 5, warm page cache. Warnings: {D.data_warnings(ds) or 'none'}.\n\n"
        + markdown_table(["what", "ms"], [[w, f"{t * 1e3:.2f}"] for w, t in rows])
    )
    write_result("saturation", text)


if __name__ == "__main__":
    main()
