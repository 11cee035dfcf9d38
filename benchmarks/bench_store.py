"""How the runs folder scales: 100, 1,000 and 10,000 run folders.

The folders are copies of a few real finished runs (trained here, tiny) with varied configs — backbone,
cut, initialisation, training size, learning rate, seed — each a distinct run key, as a cluster sweep
leaves them (``model.pt`` left out: nothing measured here reads it). Measured in one process, as ratios
to the 100-run folder and in seconds:

- ``python -m medtl runs --json`` as a new process, first with no index (``.index.json``) and then with it;
- in a new process per folder, the Home page (AppTest: imports and the folder's index read), then the Compare
  page: its first load, a new metric and a rerun (a widget change); twice — first with the table's cached rows
  (``.index-table.json``, which the listing made with the index) deleted, the worst case, so the page makes
  them; then with them, as every later process finds them.

    python benchmarks/bench_store.py                   # 100, 1000, 10000
    python benchmarks/bench_store.py --sizes 100,1000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import HERE, markdown_table, write_result  # noqa: E402
from medtl.config import RunConfig  # noqa: E402
from medtl.run_index import TABLE  # noqa: E402
from medtl.runs import RunStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COPY = ("status.json", "metrics.json", "history.jsonl", "predictions.npz")


def seed_runs(where: Path) -> list[Path]:
    """Four real finished runs: two cuts x two seeds, tiny (trained in a few seconds)."""
    runs = where / "seed-runs"
    args = ["sweep", "--cut", "layer1,layer2", "--seed", "0,1", "--n-images", "160", "--image-size", "32"]
    args += ["--epochs", "1", "--batch-size", "16", "--runs-dir", str(runs)]
    subprocess.run([sys.executable, "-m", "medtl", *args], check=True, capture_output=True, env=_env())
    return sorted(p for p in runs.iterdir() if (p / "config.json").is_file())


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def grid(n: int):
    """``n`` distinct variations (backbone, cut, init, size, lr, seed)."""
    cuts = {
        "resnet18": ["stem", "layer1", "layer2", "layer3", "full"],
        "resnet50": ["layer1", "layer2", "layer3.3", "full"],
    }
    i = 0
    while True:
        for seed in range(1000):
            for lr in (1e-3, 3e-4, 1e-4):
                for size in (None, 0.1, 0.05):
                    for init in ("random", "imagenet"):
                        for backbone, cs in cuts.items():
                            for cut in cs:
                                if i == n:
                                    return
                                i += 1
                                yield backbone, cut, init, size, lr, seed


def fill(store: RunStore, seeds: list[Path], n: int) -> None:
    """``n`` run folders: copies of the seed runs with a varied config each (and a consistent status key)."""
    store.root.mkdir(parents=True, exist_ok=True)
    for k, (backbone, cut, init, size, lr, seed) in enumerate(grid(n)):
        src = seeds[k % len(seeds)]
        base = RunConfig.load(src / "config.json")
        strategy = "finetune" if cut == "full" else "truncate"
        cfg = base.replace(
            data=base.data.replace(train_size=size, seed=seed),
            model=base.model.replace(backbone=backbone, cut=cut, strategy=strategy, init=init),
            train=base.train.replace(lr=lr, seed=seed),
        )
        dest = store.root / f"20260101-000000-{k:07d}"
        dest.mkdir()
        (dest / "config.json").write_text(cfg.to_json())
        for name in COPY:
            shutil.copyfile(src / name, dest / name)
        st = json.loads((src / "status.json").read_text())
        st.update(key=cfg.key(), name=cfg.name)
        (dest / "status.json").write_text(json.dumps(st))


def time_cli(runs: Path) -> float:
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "medtl", "runs", "--json", "--runs-dir", str(runs)],
        check=True,
        capture_output=True,
        env=_env(),
    )
    took = time.perf_counter() - t
    assert out.stdout.startswith(b"[")
    return took


def time_compare(runs: Path) -> tuple[float, float, float, float]:
    """The Compare page (AppTest): first load, a rerun that switches the metric (a figure not seen yet: its
    summary computed), and a rerun back to the first metric (seen before: from the page's caches)."""
    from streamlit.testing.v1 import AppTest

    os.environ["MEDTL_RUNS"] = str(runs)
    # the app's Home page first, as a user opens it: the process's imports and the folder's index read once
    home = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    t = time.perf_counter()
    home.run()
    opened = time.perf_counter() - t
    assert not home.exception, home.exception
    at = AppTest.from_file(str(ROOT / "pages" / "3_Compare.py"), default_timeout=600)
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    assert not at.exception, at.exception
    metric = at.selectbox(key="metric")
    was = metric.value
    t = time.perf_counter()
    metric.set_value("test.auroc" if was != "test.auroc" else "test.auprc").run()
    switch = time.perf_counter() - t
    assert not at.exception, at.exception
    t = time.perf_counter()
    at.selectbox(key="metric").set_value(was).run()
    back = time.perf_counter() - t
    assert not at.exception, at.exception
    return opened, first, switch, back


def _pages(runs: Path) -> list[float]:
    out = subprocess.run([sys.executable, __file__, "--pages", str(runs)], check=True, capture_output=True, env=_env())
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--pages", metavar="RUNS", help="time the pages on this runs folder (a JSON line; internal)")
    a = ap.parse_args()
    if a.pages:
        print(json.dumps(time_compare(Path(a.pages))))
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench_store_"))
    os.environ.setdefault("MEDTL_CACHE", str(tmp / "cache"))
    seeds = seed_runs(tmp)
    rows, raw = [], []
    for n in (int(x) for x in a.sizes.split(",")):
        store = RunStore(tmp / f"runs{n}")
        fill(store, seeds, n)
        cold = time_cli(store.root)
        warm = time_cli(store.root)
        # each folder's pages in a process of their own: the Home page's figure is a new process's. The CLI
        # listing made the table's cached rows with the index; without them (deleted: the worst case) the first
        # page process makes them, and the second (as every later one) reads them
        (store.root / TABLE).unlink()
        cold_first = _pages(store.root)[1]
        home, first, switch, rerun = _pages(store.root)
        raw.append(
            {
                "runs": n,
                "cli_cold_s": cold,
                "cli_warm_s": warm,
                "home_s": home,
                "compare_first_no_rows_s": cold_first,
                "compare_first_s": first,
                "compare_switch_s": switch,
                "compare_rerun_s": rerun,
            }
        )
        rows.append(
            [
                f"{n:,}",
                f"{cold:.2f}",
                f"{warm:.2f}",
                f"{home:.2f}",
                f"{cold_first:.2f}",
                f"{first:.2f}",
                f"{switch:.2f}",
                f"{rerun:.2f}",
            ]
        )
        print(rows[-1], flush=True)
        shutil.rmtree(store.root)
    base = raw[0]
    text = (
        "# The runs folder at scale\n\n"
        f"Copies of real tiny runs with varied configs; CPU, {os.cpu_count()} cores. "
        "Command: `python benchmarks/bench_store.py`\n\n"
        + markdown_table(
            [
                "runs",
                "`runs --json`, no index (s)",
                "`runs --json`, indexed (s)",
                "Home page, new process (s)",
                "Compare first load, no cached rows (s)",
                "Compare first load (s)",
                "Compare, a new metric (s)",
                "Compare rerun (s)",
            ],
            rows,
        )
        + "\n\nHome page: the app opened in a new process (Python's imports, torch's among them, and the folder's "
        "index read); Compare first load: the page opened next, as a user clicks it — first by the process that makes "
        "the table's cached rows (`.index-table.json`, deleted for it: the listing had made them), then by a later one that "
        "reads them. A new metric: the figures of a metric not shown yet (summaries and pooled intervals computed); "
        "rerun: back to a metric seen before (the page's caches). "
        "Ratios to the 100-run folder (indexed CLI, Compare rerun): "
        + ", ".join(
            f"{r['runs']:,}: {r['cli_warm_s'] / base['cli_warm_s']:.1f}x, {r['compare_rerun_s'] / base['compare_rerun_s']:.1f}x"
            for r in raw
        )
    )
    write_result("store", text)
    (HERE / "results" / "store.json").write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
