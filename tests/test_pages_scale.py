"""The Compare page with more runs than it draws: the table lists the best 500, the truncation figure the
12 fullest lines, the seeds figure 30 experiments, and the pooled intervals of thousands of prediction files
are asked for, each with a caption saying what is left out; and the runs folder's re-check window."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from medtl import runs as R
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.runs import RunStore

LRS = [round(1e-4 * (1 + k), 6) for k in range(14)]  # 14 lines (> 12 drawn)
CUTS = ("layer1", "layer2", "layer3")
SEEDS = range(15)  # 14 x 3 = 42 experiments (> 30 boxes), 630 runs (> 500 rows)


def _write(store: RunStore, cfg: RunConfig, y: np.ndarray, rng) -> None:
    score = rng.random(y.size) * 0.5 + 0.5 * y * rng.random()
    run_id = store.create(cfg, state="done")
    store.write_predictions(run_id, index=np.arange(y.size), y_true=y, y_score=score)
    auroc = float(0.5 + 0.4 * rng.random())
    store.write_metrics(
        run_id,
        {
            "test": {"auroc": auroc, "auprc": auroc - 0.2, "auroc_ci": [auroc - 0.05, auroc + 0.05]},
            "train": {"n": 100, "n_pos": 25, "seconds": 1.0},
            "model": {"params": 1000 * len(cfg.model.cut), "macs": 10**6, "latency_ms": 1.0},
        },
    )


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("many") / "runs")
    rng = np.random.default_rng(0)
    y = (rng.random(40) < 0.3).astype(int)
    data = DataConfig(n_images=200, image_size=32)
    for lr in LRS:
        for cut in CUTS:
            for seed in SEEDS:
                cfg = RunConfig(data.replace(seed=seed), ModelConfig(cut=cut), TrainConfig(epochs=1, lr=lr, seed=seed))
                _write(store, cfg, y, rng)
    return store.root


def _array(a) -> np.ndarray:
    """A Plotly JSON array: a list, or typed ``{"dtype", "bdata"}`` (base64) as Plotly 6 writes numpy arrays."""
    if isinstance(a, dict):
        return np.frombuffer(base64.b64decode(a["bdata"]), dtype=a["dtype"])
    return np.asarray(a if a is not None else [], dtype=float)


def _bars(at: AppTest) -> int:
    """Points of the truncation figure with an error bar."""
    data = json.loads(at.get("plotly_chart")[-2].proto.spec)["data"]
    return sum(int(np.sum(_array(t["error_y"].get("array")) > 0)) for t in data if t.get("error_y"))


@pytest.mark.slow
def test_compare_page_draws_what_stays_readable_and_says_what_it_left_out(many_runs, monkeypatch):
    monkeypatch.setenv("MEDTL_RUNS", str(many_runs))
    at = AppTest.from_file("../pages/3_Compare.py", default_timeout=300).run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "Showing the best 500 of 630 runs" in captions
    assert len(at.dataframe[0].value) == 500
    assert "2 more line(s) not drawn" in captions  # 14 lines, 12 drawn
    assert "The 30 experiments with the most repeats (then the best mean) of 42" in captions
    seeds = at.get("plotly_chart")[-1]
    assert len(json.loads(seeds.proto.spec)["data"]) == 30
    # 12 lines x 3 cuts x 15 seeds = 540 prediction files: asked for, and no bar for repeats until then
    box = at.checkbox(key="trunc_intervals")
    assert "reads 540 prediction files" in box.label and not box.value
    assert "no bar until their intervals are asked for" in captions
    assert not _bars(at)
    box.check().run()
    assert not at.exception
    assert _bars(at) == 12 * 3  # every point of every line drawn has its interval now
    assert "no bar until" not in " ".join(c.value for c in at.caption)
    # the CSV still covers every run shown by the filters, not only the 500 listed
    assert "630 rows" in at.get("download_button")[0].proto.label


@pytest.mark.slow
def test_recomputing_thousands_of_runs_for_a_prevalence_is_asked_for_first(many_runs, monkeypatch):
    """630 runs recorded without an operating point: each needs its metrics recomputed from its predictions
    (about 35 ms a run); above 300 the page asks, and shows the recorded values until then, saying so."""
    monkeypatch.setenv("MEDTL_RUNS", str(many_runs))
    at = AppTest.from_file("../pages/3_Compare.py", default_timeout=300).run()
    assert not at.exception
    warned = " ".join(w.value for w in at.warning)
    assert "630 runs" in warned and "recorded values" in warned
    assert at.button(key="recompute").label == "Recompute 630 runs"
    at.number_input(key="cmp_prevalence").set_value(5.0).run()  # a prevalence: still asked, not applied yet
    assert not at.exception
    assert "A deployment prevalence needs each run's metrics recomputed" in " ".join(w.value for w in at.warning)
    captions = " ".join(c.value for c in at.caption)
    assert "at each test set's prevalence" in captions and "deployment prevalence of 5.0%" not in captions


@pytest.mark.slow
def test_recomputed_runs_at_a_prevalence_once_asked(tmp_path, monkeypatch):
    from ui import metrics_view

    monkeypatch.setattr(metrics_view, "ASK_ABOVE", 5)
    store = RunStore(tmp_path / "runs")
    rng = np.random.default_rng(1)
    y = (rng.random(40) < 0.3).astype(int)
    y[:2] = 1, 0
    for seed in range(8):
        cfg = RunConfig(DataConfig(n_images=200, image_size=32, seed=seed), ModelConfig(), TrainConfig(seed=seed))
        _write(store, cfg, y, rng)
        run_id = store.ids()[-1]
        p = dict(store.predictions(run_id))
        store.write_predictions(run_id, **p, val_index=p["index"], val_y_true=y, val_y_score=p["y_score"])
    monkeypatch.setenv("MEDTL_RUNS", str(store.root))
    at = AppTest.from_file("../pages/3_Compare.py", default_timeout=300)
    at.session_state["cmp_prevalence"] = 5.0
    at.run()
    assert not at.exception
    assert at.button(key="recompute").label == "Recompute 8 runs"
    at.button(key="recompute").click().run()
    assert not at.exception
    assert not [b for b in at.button if b.key == "recompute"]
    assert "recomputed" not in " ".join(w.value for w in at.warning)
    assert "deployment prevalence of 5.0%" in " ".join(c.value for c in at.caption)
    table = at.dataframe[0].value
    assert any("PPV at 5.0%" in c for c in table.columns)  # the operating-point columns at that prevalence
    assert table[[c for c in table.columns if "PPV at 5.0%" in c][0]].notna().all()


def test_a_finished_run_is_looked_at_again_after_the_recheck_window(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "RECHECK_S", 3600.0)
    monkeypatch.setattr(R, "FRESH_S", 0.0)
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig(DataConfig(n_images=200, image_size=32), ModelConfig(cut="layer1"), TrainConfig(epochs=1))
    run_id = store.create(cfg, state="done")
    store.write_metrics(run_id, {"test": {"auroc": 0.7}})
    assert store.table().loc[0, "test.auroc"] == 0.7
    # a hand edit of a finished run by another process: not looked at inside the window ...
    (store.path(run_id) / "metrics.json").write_bytes(b"\xf1\x00garbage")
    assert store.damaged() == []
    # ... a new folder is seen at once, and this store's own writes are seen at once (that run re-read)
    other = store.create(cfg.replace(train=cfg.train.replace(seed=1)), state="queued")
    assert other in store.ids() and store.damaged() == []
    store.write_status(run_id, note="touched")
    assert [r for r, _ in store.damaged()] == [run_id]
    # after the window, by any reader
    monkeypatch.setattr(R, "RECHECK_S", 0.0)
    assert [r for r, _ in RunStore(store.root).damaged()] == [run_id]
