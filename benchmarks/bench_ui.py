"""Does the UI stay responsive while a job trains? Time a rerun of the Compare page (AppTest, in
the same process as the JobQueue's worker thread, as in the real server) with and without a
training job running, in one run.

Run: ``python benchmarks/bench_ui.py``.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import markdown_table, write_result  # noqa: E402


def rerun_times(at, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        at.run()
        out.append(time.perf_counter() - t)
        assert not at.exception, at.exception
    return out


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    os.environ["MEDTL_RUNS"] = str(work / "runs")
    os.environ.setdefault("MEDTL_CACHE", str(work / "cache"))
    from streamlit.testing.v1 import AppTest

    from medtl.cli import main as cli
    from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from medtl.jobs import JobQueue
    from medtl.runs import RunStore

    cli(
        [
            "sweep",
            "--cut",
            "layer1,layer2,layer3",
            "--init",
            "random",
            "--seed",
            "0,1",
            "--n-images",
            "300",
            "--image-size",
            "48",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--runs-dir",
            os.environ["MEDTL_RUNS"],
        ]
    )
    at = AppTest.from_file(str(ROOT / "pages" / "3_Compare.py"), default_timeout=120)
    at.run()
    idle = rerun_times(at, 10)
    queue = JobQueue(RunStore())
    rid = queue.submit(
        RunConfig(
            DataConfig(n_images=3000, image_size=64),
            ModelConfig("resnet18", "truncate", "layer3", "random"),
            TrainConfig(epochs=50),
        )
    )
    while queue.snapshot().get(rid, {}).get("batch", 0) < 2:
        time.sleep(0.1)
    busy = rerun_times(at, 10)
    queue.cancel(rid)
    queue.shutdown()
    med_i, med_b = statistics.median(idle), statistics.median(busy)
    rows = [
        ["no job running", f"{med_i * 1e3:.0f} ms", f"{max(idle) * 1e3:.0f} ms"],
        ["ResNet18@layer3 training at 64 px", f"{med_b * 1e3:.0f} ms", f"{max(busy) * 1e3:.0f} ms"],
    ]
    text = (
        f"Compare page rerun (AppTest, 6 runs in the table, 4 Plotly figures); {platform.machine()}, {os.cpu_count()} cores; "
        f"10 reruns each; slowdown while training: {med_b / med_i:.1f}x.\n\n"
        + markdown_table(["while", "median", "max"], rows)
    )
    write_result("ui", text)


if __name__ == "__main__":
    main()
