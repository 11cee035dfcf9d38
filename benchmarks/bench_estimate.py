"""How close the study estimate is to the measured time: a preset study trained inline, one run after
another, on this machine.

Reports the estimate before anything ran (the throughput model with its per-run overhead), the estimate
once the first run had finished (calibrated by it: elapsed + the rest times the measured ratio), and the
measured wall time of the whole study, as ratios to the measured time.

    python benchmarks/bench_estimate.py              # the demo preset (20 runs, minutes on a 2-core CPU)
    python benchmarks/bench_estimate.py --preset quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import HERE, markdown_table, write_result  # noqa: E402
from medtl import data as D  # noqa: E402
from medtl import estimate, study  # noqa: E402
from medtl.runs import RunStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="demo")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_estimate_"))
    os.environ.setdefault("MEDTL_CACHE", str(tmp / "cache"))
    store = RunStore(tmp / "runs")
    s = study.preset(a.preset).replace(name="bench")
    from medtl.study.preflight import check_data

    check_data(s)  # data generated and cached before the clock starts, as the page does before it estimates
    speeds: dict = {}

    def counts(d):
        return D.load(d).counts()

    def speed(cfg):
        k = estimate.speed_key(cfg)
        if k not in speeds:
            speeds[k] = estimate.measure(cfg.model, cfg.data.image_size, cfg.train.batch_size, 1, "cpu")
        return speeds[k]

    t_measure = time.perf_counter()
    before = estimate.for_runs(study.plan(s, store), [], counts, speed)
    t_measure = time.perf_counter() - t_measure
    first_calibrated = None
    t0 = time.perf_counter()

    def on_run(k, n, cfg):
        nonlocal first_calibrated
        done = [(store.config(r), store.status(r)) for r in store.ids() if store.status(r).get("state") == "done"]
        if len(done) == 1 and first_calibrated is None:
            rest = estimate.for_runs(study.plan(s, store), done, counts, speed)
            first_calibrated = time.perf_counter() - t0 + rest["seconds"]

    result = study.run_study(s, store, on_run=on_run)
    total = time.perf_counter() - t0
    runs = len(store.ids())
    per_run = []
    for r in store.ids():
        cfg, st = store.config(r), store.status(r)
        c = counts(cfg.data)
        per_run.append(
            {
                "run": cfg.name,
                "model_s": estimate.estimate([cfg], counts, speed)["seconds"] - estimate.overhead(cfg, c["test"]["n"]),
                "overhead_s": estimate.overhead(cfg, c["test"]["n"]),
                "train_s": (store.metrics(r) or {}).get("train", {}).get("seconds"),
                "measured_s": estimate.run_seconds(st),
            }
        )
    rows = [
        ["measured (whole study)", f"{total:.0f} s", "1.00"],
        ["estimate before any run", f"{before['seconds']:.0f} s", f"{before['seconds'] / total:.2f}"],
        [
            "estimate after the first run (elapsed + calibrated rest)",
            f"{first_calibrated:.0f} s" if first_calibrated else "-",
            f"{first_calibrated / total:.2f}" if first_calibrated else "-",
        ],
    ]
    text = (
        f"# Study time estimate vs measured ({a.preset} preset, {runs} runs, {result['failed']} failed)\n\n"
        f"CPU, {os.cpu_count()} cores; measuring the speeds took {t_measure:.1f} s. "
        "Command: `python benchmarks/bench_estimate.py"
        + (f" --preset {a.preset}" if a.preset != "demo" else "")
        + "`\n\n"
        + markdown_table(["", "seconds", "ratio to measured"], rows)
    )
    write_result(f"estimate_{a.preset}", text)
    (HERE / "results" / f"estimate_{a.preset}.json").write_text(
        json.dumps(
            {"measured_s": total, "before_s": before["seconds"], "after_first_s": first_calibrated, "runs": per_run},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
