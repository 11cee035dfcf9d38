"""The trainer's seams: what runs after each epoch, in which order, and how a run resumes through them.

Real tiny runs on SynthCXR (CPU, a few seconds each). Where a test needs a known sequence of
improvements, the checkpoint selection's score is scripted per epoch; everything else is the real
loop: the history, model.pt, last.pt, the events, early stopping and resume."""

import threading

import numpy as np
import pytest
import torch

from medtl import checkpoint, train
from medtl.callbacks import Callback, FitState
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.runs import RunStore

TIMING = ("seconds", "val_seconds", "images_per_s", "data_wait_s")


def tiny(**train_kw) -> RunConfig:
    t = {"epochs": 2, "batch_size": 16, "bootstrap": 20, "device": "cpu", **train_kw}
    return RunConfig(
        DataConfig(n_images=64, image_size=32),
        ModelConfig("resnet18", "truncate", "layer1", "random"),
        TrainConfig(**t),
    )


def scripted_scores(monkeypatch, scores: list[float]) -> None:
    """The selection scores epoch ``e`` (1-based) as ``scores[e - 1]`` instead of its validation metric."""
    monkeypatch.setattr(checkpoint.ModelCheckpoint, "score", lambda self, h: float(scores[h["epoch"] - 1]))


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in TIMING} for h in history]


def cancel_after_epoch(epoch: int, cancel: threading.Event):
    """An event callback that cancels the run once epoch ``epoch`` (1-based) is recorded (last.pt written)."""
    return lambda e: e.get("type") == "epoch" and e["epoch"] == epoch and cancel.set()


# --- early stopping -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path, monkeypatch):
    # improved: yes, no, yes, no, no -> the second epoch in a row without improvement (5) stops; the
    # improvement at epoch 3 reset the count (else epoch 4 would have stopped the run)
    scripted_scores(monkeypatch, [1, 1, 2, 2, 2, 9, 9, 9])
    store = RunStore(tmp_path)
    cfg = tiny(epochs=8, patience=2)
    rid = store.create(cfg)
    events = []
    assert train.run(cfg, store, rid, callback=events.append)["state"] == "done"
    assert [h["epoch"] for h in store.history(rid)] == [1, 2, 3, 4, 5]
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1, 2, 3, 4, 5]
    assert [e["best_epoch"] for e in events if e["type"] == "epoch"] == [1, 1, 3, 3, 3]
    stops = [e["phase"] for e in events if e["type"] == "status" and "early stop" in e.get("phase", "")]
    assert stops == ["early stop after epoch 5"]
    assert store.metrics(rid)["val"]["best_epoch"] == 3
    assert checkpoint.read(store.path(rid) / "model.pt")["epoch"] == 3


@pytest.mark.slow
def test_patience_zero_never_stops(tmp_path, monkeypatch):
    scripted_scores(monkeypatch, [1, 1, 1, 1])
    store = RunStore(tmp_path)
    cfg = tiny(epochs=4, patience=0)
    rid = store.create(cfg)
    assert train.run(cfg, store, rid)["state"] == "done"
    assert len(store.history(rid)) == 4 and store.metrics(rid)["val"]["best_epoch"] == 1


@pytest.mark.slow
def test_a_resumed_run_keeps_its_early_stopping_count(tmp_path, monkeypatch):
    """Cancelled after epoch 4 (one epoch since the best, epoch 3), the resumed run stops after epoch 5
    as the uninterrupted one does, not after 6 (a count restarted at 0)."""
    scripted_scores(monkeypatch, [1, 1, 2, 2, 2, 2, 9, 9])
    store = RunStore(tmp_path)
    cfg = tiny(epochs=8, patience=2)
    rid = store.create(cfg)
    cancel = threading.Event()
    assert train.run(cfg, store, rid, cancel=cancel, callback=cancel_after_epoch(4, cancel))["state"] == "cancelled"
    assert checkpoint.read(store.path(rid) / "last.pt")["best_epoch"] == 2  # 0-based: epoch 3
    events = []
    assert train.run(cfg, store, rid, callback=events.append, resume=True)["state"] == "done"
    assert [h["epoch"] for h in store.history(rid)] == [1, 2, 3, 4, 5]
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [5]
    assert store.metrics(rid)["val"]["best_epoch"] == 3


# --- resume ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_resumed_run_continues_as_the_uninterrupted_one(tmp_path):
    """Same seed, same epochs: a run cancelled after epoch 2 and resumed has the same history (losses,
    metrics, learning rates), the same selected epoch and weights and the same predictions as one that ran
    through; its images seen and training time carry over from before the interruption."""
    # lr 0.01 on the plateau schedule: the validation loss jumps at epoch 2, and the rate falls 10x for
    # epoch 4 (as the scheduler's count from before the interruption says)
    cfg = tiny(epochs=4, schedule="plateau", lr=0.01, patience=0, select_by="val_loss")
    ran, cut = RunStore(tmp_path / "through"), RunStore(tmp_path / "resumed")
    whole = ran.create(cfg)
    assert train.run(cfg, ran, whole)["state"] == "done"

    rid = cut.create(cfg)
    cancel = threading.Event()
    assert train.run(cfg, cut, rid, cancel=cancel, callback=cancel_after_epoch(2, cancel))["state"] == "cancelled"
    before = checkpoint.read(cut.path(rid) / "last.pt")
    assert before["epoch"] == 1 and len(cut.history(rid)) == 2
    assert train.run(cfg, cut, rid, resume=True)["state"] == "done"

    assert without_timing(cut.history(rid)) == without_timing(ran.history(whole))
    assert [h["lr"] for h in cut.history(rid)] == pytest.approx([0.01, 0.01, 0.01, 0.001])
    m, m_whole = cut.metrics(rid), ran.metrics(whole)
    assert m["test"]["auroc"] == m_whole["test"]["auroc"] and m["val"] == m_whole["val"]
    p, p_whole = cut.predictions(rid), ran.predictions(whole)
    for k in ("index", "y_true", "y_score", "val_y_score"):
        assert np.array_equal(p[k], p_whole[k]), k
    sd = checkpoint.read(cut.path(rid) / "model.pt")["state_dict"]
    sd_whole = checkpoint.read(ran.path(whole) / "model.pt")["state_dict"]
    assert sd.keys() == sd_whole.keys() and all(torch.equal(sd[k], sd_whole[k]) for k in sd_whole)
    # counters restored from last.pt: all four epochs' images and seconds, not only the last two
    seen = m_whole["train"]["images_per_s"] * m_whole["train"]["seconds"]
    assert m["train"]["images_per_s"] * m["train"]["seconds"] == pytest.approx(seen)
    assert m["train"]["seconds"] == pytest.approx(sum(h["seconds"] for h in cut.history(rid)))
    assert before["seen"] == pytest.approx(seen / 2)
    assert not (cut.path(rid) / "last.pt").exists()


# --- callbacks given to the trainer ---------------------------------------------------------------------


class Recorder(Callback):
    """Notes every hook call and what the run folder holds at each epoch's end."""

    def __init__(self, store: RunStore, run_id: str, stop_after: int | None = None):
        self.store, self.run_id, self.stop_after = store, run_id, stop_after
        self.calls, self.hists, self.at_epoch_end = [], [], []

    def on_fit_start(self, fit: FitState) -> None:
        self.calls.append(("start", fit.start_epoch))

    def on_epoch_end(self, fit: FitState, epoch: int, hist: dict) -> None:
        self.calls.append(("epoch", epoch))
        self.hists.append(dict(hist))
        folder = self.store.path(self.run_id)
        self.at_epoch_end.append(
            {
                "history": len(self.store.history(self.run_id)),
                "last.pt": checkpoint.read(folder / "last.pt")["epoch"],
                "model.pt": checkpoint.read(folder / "model.pt")["epoch"],
                "status": self.store.status(self.run_id)["progress"].get("epoch"),
                "improved": fit.improved,
                "seen": fit.seen,
            }
        )
        if epoch + 1 == self.stop_after:
            fit.should_stop = True

    def on_fit_end(self, fit: FitState) -> None:
        self.calls.append(("end", fit.warning))


@pytest.mark.slow
def test_a_trainer_callback_sees_every_epoch_in_order_after_the_runs_own(tmp_path):
    store = RunStore(tmp_path)
    cfg = tiny(epochs=3, patience=0)
    rid = store.create(cfg)
    rec = Recorder(store, rid)
    status = train.Trainer(cfg, store, rid, callbacks=[rec]).run()
    assert status["state"] == "done", status
    history = store.history(rid)
    assert rec.calls == [("start", 0), ("epoch", 0), ("epoch", 1), ("epoch", 2), ("end", None)]
    assert rec.hists == history and [h["epoch"] for h in history] == [1, 2, 3]
    assert "n_seen" not in rec.hists[0]  # the record as written to history.jsonl
    best = store.metrics(rid)["val"]["best_epoch"]
    for e, seen in enumerate(rec.at_epoch_end):
        # the history appended, last.pt saved and the epoch event written before this callback runs
        assert seen["history"] == e + 1 and seen["last.pt"] == e and seen["status"] == e + 1
        assert seen["model.pt"] == max(k + 1 for k in range(e + 1) if rec.at_epoch_end[k]["improved"])
    assert rec.at_epoch_end[0]["improved"] and seen["model.pt"] == best
    per_epoch = rec.at_epoch_end[0]["seen"]
    assert per_epoch > 0 and [s["seen"] for s in rec.at_epoch_end] == [per_epoch, 2 * per_epoch, 3 * per_epoch]


@pytest.mark.slow
def test_a_trainer_callback_can_stop_the_run(tmp_path):
    store = RunStore(tmp_path)
    cfg = tiny(epochs=5, patience=0)
    rid = store.create(cfg)
    rec, events = Recorder(store, rid, stop_after=2), []
    assert train.Trainer(cfg, store, rid, callback=events.append, callbacks=[rec]).run()["state"] == "done"
    assert [h["epoch"] for h in store.history(rid)] == [1, 2]
    assert rec.calls[-1][0] == "end" and [c for c in rec.calls if c[0] == "epoch"] == [("epoch", 0), ("epoch", 1)]
    # then the test phase as always: evaluation, intervals, profiling, the files
    phases = [e["phase"] for e in events if e.get("final") and "done" not in e]
    assert phases == [
        "evaluating on the validation split",
        "evaluating on the test split",
        "confidence intervals (20 bootstrap resamples)",
        "profiling (parameters, MACs, single-image latency)",
    ]
    m, pred = store.metrics(rid), store.predictions(rid)
    assert m["test"]["n"] == len(pred["y_true"]) > 0 and len(pred["val_y_true"]) > 0 and m["model"]["macs"] > 0
    assert not (store.path(rid) / "last.pt").exists()


@pytest.mark.slow
def test_a_resumed_fit_starts_its_callbacks_after_the_saved_epoch(tmp_path):
    store = RunStore(tmp_path)
    cfg = tiny(epochs=3, patience=0)
    rid = store.create(cfg)
    cancel = threading.Event()
    first = train.Trainer(cfg, store, rid, cancel, cancel_after_epoch(1, cancel))
    assert first.run()["state"] == "cancelled"
    rec = Recorder(store, rid)
    assert train.Trainer(cfg, store, rid, callbacks=[rec]).run(resume=True)["state"] == "done"
    assert rec.calls[:3] == [("start", 1), ("epoch", 1), ("epoch", 2)]
    assert [h["epoch"] for h in rec.hists] == [2, 3] and rec.hists == store.history(rid)[1:]
    per_epoch = rec.at_epoch_end[0]["seen"] / 2  # the images of epoch 1, from last.pt, then epoch 2's
    assert rec.at_epoch_end[1]["seen"] == 3 * per_epoch
