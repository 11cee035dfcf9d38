"""Run folders with known predictions, written through the RunStore (no training): several
experiments on two datasets and two learning rates, some repeated over seeds."""

from __future__ import annotations

import numpy as np

from medtl import metrics as M
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.runs import RunStore

SYNTH = DataConfig(n_images=200, image_size=32)
MEDMNIST = DataConfig(dataset="medmnist:/data/pneumoniamnist.npz", finding="1", image_size=32)


def write_run(store: RunStore, cfg: RunConfig, y: np.ndarray, signal: float, seed: int) -> str:
    """A finished run whose test predictions carry ``signal`` (0 = chance); metrics computed from them."""
    rng = np.random.default_rng(seed)
    score = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(0, 1, y.size))))
    run_id = store.create(cfg, state="done")
    store.write_predictions(run_id, index=np.arange(y.size), y_true=y, y_score=score)
    ci = M.bootstrap_ci(y, score, n_boot=200, seed=0)
    store.write_metrics(
        run_id,
        {
            "test": {
                "auroc": M.auroc(y, score),
                "auprc": M.average_precision(y, score),
                "auprc_trapezoid": M.auprc_trapezoid(y, score),
                "auroc_ci": list(ci["auroc"]),
                "auprc_ci": list(ci["auprc"]),
                "n": int(y.size),
                "n_pos": int(y.sum()),
            },
            "train": {"n": 100, "n_pos": 25, "seconds": 1.0 + seed, "images_per_s": 100.0 + seed},
            "model": {"params": 1000 * (2 + len(cfg.model.cut)), "macs": 10**6, "latency_ms": 1.0},
        },
    )
    return run_id


def mixed_runs(store: RunStore) -> dict[str, list[str]]:
    """Experiment label -> run ids. Issue 12's case: repeats, another lr, another dataset, one name."""
    y_syn = (np.random.default_rng(0).random(90) < 0.25).astype(int)
    y_med = (np.random.default_rng(1).random(60) < 0.4).astype(int)

    def cfg(data: DataConfig, cut: str, seed: int, lr: float = 1e-3) -> RunConfig:
        return RunConfig(data.replace(seed=seed), ModelConfig(cut=cut), TrainConfig(epochs=3, lr=lr, seed=seed))

    out: dict[str, list[str]] = {}
    out["synth layer1"] = [write_run(store, cfg(SYNTH, "layer1", s), y_syn, 1.0, s) for s in (0, 1)]
    out["synth layer2"] = [write_run(store, cfg(SYNTH, "layer2", s), y_syn, 2.0, 10 + s) for s in (0, 1, 2)]
    out["synth layer2 lr=1"] = [write_run(store, cfg(SYNTH, "layer2", 0, lr=1.0), y_syn, 0.0, 20)]
    out["medmnist layer2"] = [write_run(store, cfg(MEDMNIST, "layer2", 0), y_med, 3.0, 30)]
    return out
