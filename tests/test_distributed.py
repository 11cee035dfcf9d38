"""The prefetching batch producer and data-parallel training of one run with torchrun (gloo, CPU)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from medtl import train
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.data import ImageSet, load
from medtl.data.augment import AugmentConfig, batches
from medtl.distributed import SINGLE, Dist, RankStore, from_env, shard_indices
from medtl.runs import RunStore

TINY = [
    "--dataset", "synthetic", "--n-images", "160", "--image-size", "32", "--epochs", "2", "--batch-size", "16",
    "--backbone", "resnet18", "--cut", "layer1", "--init", "random", "--device", "cpu",
]  # fmt: skip
ROOT = str(Path(__file__).resolve().parents[1])  # children import this checkout's medtl, whatever their script's folder
CHILD_ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p),
}


def torchrun(*args: str, **kw) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]


def producer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "medtl-batches"]


# --- sharding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, world", [(112, 2), (113, 2), (100, 3), (5, 4)])
def test_shards_are_disjoint_equal_and_cover_all_but_the_remainder(n, world):
    perm = np.random.default_rng(0).permutation(np.arange(1000, 1000 + n))
    shards = [shard_indices(perm, r, world) for r in range(world)]
    assert {len(s) for s in shards} == {n // world}  # the same number of steps on every rank
    union = np.concatenate(shards)
    assert len(np.unique(union)) == len(union) == n - n % world  # disjoint
    assert set(union) <= set(perm)
    with pytest.raises(ValueError, match="rank must be in"):
        shard_indices(perm, world, world)


def test_rank_shards_of_an_epoch_partition_the_training_split():
    """Every rank draws the same permutation from the same seed; their batches are disjoint and cover the split."""
    ds = load(DataConfig(n_images=160, image_size=32))
    world, per_rank = 2, 8
    seen = []
    for rank in range(world):
        gen = torch.Generator().manual_seed(0)
        with batches(ds, "train", per_rank, shuffle=True, gen=gen, drop_last=True, shard=(rank, world)) as b:
            seen.append(np.concatenate([idx for _, _, idx in b]))
    train_idx = ds.splits["train"]
    assert len(seen[0]) == len(seen[1]) == (len(train_idx) // world // per_rank) * per_rank
    assert not set(seen[0]) & set(seen[1])
    assert set(np.concatenate(seen)) <= set(train_idx)
    if len(train_idx) % (world * per_rank) == 0:
        assert set(np.concatenate(seen)) == set(train_idx)


def test_dist_from_env_and_batch_split():
    assert from_env({}) is SINGLE and from_env({"WORLD_SIZE": "1", "RANK": "0"}) is SINGLE
    d = from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (d.rank, d.world, d.local_rank, d.main) == (3, 4, 1, False)
    assert d.device(torch.device("cuda")) == torch.device("cuda", 1) and d.device(torch.device("cpu")).type == "cpu"
    assert d.per_rank_batch(32) == 8
    with pytest.raises(ValueError, match="batch_size must be a multiple of the number of processes"):
        d.per_rank_batch(30)


def test_rank_store_reads_but_never_writes(tmp_path):
    store = RunStore(tmp_path)
    cfg = RunConfig(DataConfig(n_images=80, image_size=32), ModelConfig("resnet18", "truncate", "layer1", "random"))
    rid = store.create(cfg)
    before = sorted(p.name for p in store.path(rid).iterdir())
    view = RankStore(store)
    assert view.write_status(rid, state="running")["state"] == "running"
    view.append_history(rid, {"epoch": 1})
    view.save_checkpoint(rid, "last.pt", {"x": 1})
    view.write_metrics(rid, {})
    assert sorted(p.name for p in store.path(rid).iterdir()) == before
    assert store.status(rid)["state"] == "queued" and view.config(rid) == cfg


# --- the prefetching producer -----------------------------------------------------------------------


def test_prefetched_batches_equal_synchronous_ones():
    """Shuffle and augmentation draw from the generator in the consumer: prefetching changes nothing."""
    ds = load(DataConfig(n_images=120, image_size=32))

    def epoch(prefetch):
        gen = torch.Generator().manual_seed(3)
        with batches(ds, "train", 16, shuffle=True, gen=gen, aug=AugmentConfig(), prefetch=prefetch) as b:
            out = list(b)
        return out, b.wait_s

    (sync, wait0), (pre, _) = epoch(0), epoch(3)
    assert wait0 == 0.0 and len(sync) == len(pre) > 2
    for (xa, ya, ia), (xb, yb, ib) in zip(sync, pre, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and np.array_equal(ia, ib)
        assert np.all(np.diff(ia) > 0)  # sorted reads from the memory map
    assert not producer_threads()


def test_abandoned_epoch_stops_the_producer():
    ds = load(DataConfig(n_images=160, image_size=32))
    with batches(ds, "train", 4, prefetch=2) as b:
        it = iter(b)
        next(it)
        assert producer_threads()  # running, blocked on the full queue
    assert not producer_threads()  # closing joined it
    it = iter(batches(ds, "train", 4, prefetch=2))
    next(it)
    it.close()  # a generator closed (or collected) mid-epoch also stops it
    assert not producer_threads()


def test_producer_exception_is_raised_in_the_consumer():
    """A batch that cannot be gathered (labels shorter than the images) fails in the training thread."""
    ds = load(DataConfig(n_images=120, image_size=32))
    bad = ImageSet(ds.images, ds.labels[:40], ds.label_names, {"train": np.arange(120)}, ds.target)
    got = []
    with pytest.raises(IndexError), batches(bad, "train", 16, prefetch=2) as b:
        got.extend(idx for _, _, idx in b)
    assert len(got) == 2  # the batches before the bad one arrived
    assert not producer_threads()


def test_cancelled_run_leaves_no_producer_thread(tmp_path):
    store = RunStore(tmp_path)
    cfg = RunConfig(
        DataConfig(n_images=160, image_size=32),
        ModelConfig("resnet18", "truncate", "layer1", "random"),
        TrainConfig(epochs=2, batch_size=8, bootstrap=20),
    )
    rid = store.create(cfg)
    cancel = threading.Event()
    status = train.run(cfg, store, rid, cancel=cancel, callback=lambda e: e.get("type") == "batch" and cancel.set())
    assert status["state"] == "cancelled"
    assert not producer_threads()


@pytest.mark.slow
def test_history_records_data_wait(tmp_path):
    store = RunStore(tmp_path)
    cfg = RunConfig(
        DataConfig(n_images=120, image_size=32),
        ModelConfig("resnet18", "truncate", "layer1", "random"),
        TrainConfig(epochs=1, batch_size=16, bootstrap=20),
    )
    rid = store.create(cfg)
    events = []
    assert train.run(cfg, store, rid, callback=events.append)["state"] == "done"
    (h,) = store.history(rid)
    assert 0 <= h["data_wait_s"] < h["seconds"]
    assert [e["data_wait_s"] for e in events if e["type"] == "epoch"] == [h["data_wait_s"]]
    assert store.metrics(rid)["train"]["world_size"] == 1


# --- torchrun, 2 processes, gloo ------------------------------------------------------------------------


def _only_run(store: RunStore) -> str:
    (rid,) = store.ids()
    return rid


@pytest.mark.slow
def test_torchrun_two_processes_train_one_run_like_one_process(tmp_path):
    """2 ranks x 8 images = the global batch of 16: the run finishes, metrics cover the whole split and
    the losses match a one-process run with batch 16 closely."""
    ddp_dir, one_dir = tmp_path / "ddp", tmp_path / "one"
    p = subprocess.run(
        torchrun("-m", "medtl", "train", *TINY, "--runs-dir", str(ddp_dir)),
        env=CHILD_ENV, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("test AUROC") == 1  # rank 0 alone prints (and records)
    ddp = RunStore(ddp_dir)
    rid = _only_run(ddp)
    assert ddp.status(rid)["state"] == "done"
    p1 = subprocess.run(
        [sys.executable, "-m", "medtl", "train", *TINY, "--runs-dir", str(one_dir)],
        env=CHILD_ENV, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert p1.returncode == 0, p1.stderr[-3000:]
    one = RunStore(one_dir)
    rid1 = _only_run(one)
    assert ddp.status(rid)["key"] == one.status(rid1)["key"]  # world size is not part of the experiment
    m, m1 = ddp.metrics(rid), one.metrics(rid1)
    assert m["train"]["world_size"] == 2 and m1["train"]["world_size"] == 1
    for k in ("n", "n_pos"):
        assert m["test"][k] == m1["test"][k] and m["train"][k] == m1["train"][k]
    ds = load(DataConfig(n_images=160, image_size=32))
    pred = ddp.predictions(rid)
    assert np.array_equal(pred["index"], np.sort(ds.splits["test"]))  # gathered from both ranks, in order
    assert np.array_equal(pred["y_true"], ds.y(np.sort(ds.splits["test"])))
    h, h1 = ddp.history(rid), one.history(rid1)
    assert [r["epoch"] for r in h] == [1, 2] and all(r["data_wait_s"] >= 0 for r in h)
    for r, r1 in zip(h, h1, strict=True):
        assert r["train_loss"] == pytest.approx(r1["train_loss"], rel=0.1)
        assert r["val_loss"] == pytest.approx(r1["val_loss"], rel=0.1)
    assert 0 <= m["test"]["auroc"] <= 1 and abs(m["test"]["auroc"] - m1["test"]["auroc"]) < 0.4


DIE_AFTER_EPOCH_1 = """
import os, signal, sys
from medtl import distributed, train
from medtl.runs import RunStore

store, rid = RunStore(sys.argv[1]), sys.argv[2]
def die(e):
    # Every rank, after its epoch 1 (rank 0: after writing last.pt): SIGKILL to the torchrun agent, so
    # that nothing cleans up or restarts, then to itself (torchrun puts each worker in its own session).
    # Between the epoch's last collective and this point a rank waits for no other.
    if e.get("type") == "epoch" and e["epoch"] == 1:
        os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
with distributed.session("cpu") as dist:
    train.run(store.config(rid), store, rid, callback=die, dist=dist)
"""


@pytest.mark.slow
def test_torchrun_run_killed_after_an_epoch_resumes_on_every_rank(tmp_path):
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig(
        DataConfig(n_images=160, image_size=32),
        ModelConfig("resnet18", "truncate", "layer1", "random"),
        TrainConfig(epochs=2, batch_size=16, device="cpu", bootstrap=50),
    )
    rid = store.create(cfg)
    script = tmp_path / "die.py"
    script.write_text(textwrap.dedent(DIE_AFTER_EPOCH_1))
    p = subprocess.run(
        torchrun(str(script), str(store.root), rid), env=CHILD_ENV, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert p.returncode == -signal.SIGKILL, p.stderr[-3000:]
    first = store.history(rid)
    assert (store.path(rid) / "last.pt").exists() and [h["epoch"] for h in first] == [1]
    assert json.loads((store.path(rid) / "status.json").read_text())["state"] == "running"
    end = time.time() + 30  # the killed ranks, orphaned by the agent, are reaped by init shortly after
    while store.orphans() != [rid] and time.time() < end:
        time.sleep(0.1)
    assert store.orphans() == [rid]
    p = subprocess.run(
        torchrun("-m", "medtl", "runs", "resume", rid, "--runs-dir", str(store.root)),
        env=CHILD_ENV, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert store.status(rid)["state"] == "done"
    assert [h["epoch"] for h in store.history(rid)] == [1, 2]
    assert store.history(rid)[0] == first[0]  # resumed after epoch 1, not restarted
    assert "(2 processes, 8 images each a step)" in p.stderr
    assert store.metrics(rid)["train"]["world_size"] == 2 and not (store.path(rid) / "last.pt").exists()
    assert json.loads((store.path(rid) / "status.json").read_text())["state"] == "done"


def test_dist_single_process_helpers_are_identity():
    logits, y, idx = np.zeros(3), np.ones(3), np.array([2, 0, 1])
    assert SINGLE.gather_predictions(logits, y, idx)[2] is idx
    assert SINGLE.sum(1.0, 2.0) == (1.0, 2.0) and SINGLE.broadcast("x") == "x"
    assert Dist(1, 2).active and not SINGLE.active
