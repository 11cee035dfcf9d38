"""Timing helpers shared by the benchmark scripts: best-of-N wall time and a Markdown table."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent


def best_of(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """The fastest of ``repeat`` timed calls, in seconds (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_result(name: str, text: str) -> Path:
    """Write ``benchmarks/results/<name>.md`` and echo it."""
    out = HERE / "results" / f"{name}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    print(text)
    return out


def train_done(store, cfg) -> str:
    """Train ``cfg`` into ``store`` inline and return the run id; raise unless the run finished."""
    from medtl import train

    run_id = store.create(cfg)
    status = train.run(cfg, store, run_id)
    if status["state"] != "done":
        raise RuntimeError(f"{cfg.name} {status['state']}: {status.get('error')}")
    return run_id


def export_synth_jpegs(folder: Path, n: int, size: tuple[int, int] = (320, 390), finding: str = "nodule") -> Path:
    """Write SynthCXR images as JPEG files at CheXpert-small size (W x H) in ``folder/{neg,pos}/``.

    Returns ``folder``; files already there are reused.
    """
    import numpy as np
    from PIL import Image

    from medtl.data import synth

    if folder.is_dir() and sum(1 for _ in folder.rglob("*.jpg")) >= n:
        return folder
    images, labels, _ = synth.generate(n, 256, seed=0, prevalence={f: 0.3 for f in synth.FINDINGS})
    col = synth.FINDINGS.index(finding)
    for i in range(n):
        d = folder / ("pos" if labels[i, col] else "neg")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(images[i, 0])).resize(size, Image.Resampling.BILINEAR).save(
            d / f"{i:05d}.jpg", quality=90
        )
    return folder
