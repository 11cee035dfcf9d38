"""The job queue with one worker per device: two logical CPU devices train two runs at once."""

import time

import pytest

from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.jobs import JobQueue, make_workers
from medtl.runs import RunStore


def tiny(seed: int, epochs: int = 2) -> RunConfig:
    return RunConfig(
        DataConfig(n_images=120, image_size=32),
        ModelConfig("resnet18", "truncate", "layer1", "random"),
        TrainConfig(epochs=epochs, batch_size=16, bootstrap=50, seed=seed),
    )


def wait_for(pred, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_workers_from_devices(monkeypatch):
    assert [w.name for w in make_workers("cpu,cpu")] == ["cpu#0", "cpu#1"]
    assert [(w.name, w.device) for w in make_workers(["cpu"])] == [("cpu", "cpu")]
    monkeypatch.setenv("MEDTL_DEVICES", "cpu, cpu")
    assert [w.name for w in make_workers()] == ["cpu#0", "cpu#1"]
    with pytest.raises(ValueError, match="'gpu0'.*cpu, mps, cuda or cuda:N"):
        make_workers("cpu,gpu0")
    with pytest.raises(ValueError, match="at least one device"):
        make_workers("")


@pytest.mark.slow
def test_two_workers_train_two_runs_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTL_DEVICES", "cpu,cpu")
    store = RunStore(tmp_path)
    q = JobQueue(store)
    try:
        assert [w.name for w in q.workers] == ["cpu#0", "cpu#1"]
        a, b = q.submit(tiny(0, epochs=30)), q.submit(tiny(1, epochs=30))
        # both report training batches at the same moment: they overlap in time
        both = lambda: all(q.snapshot().get(r, {}).get("batch", 0) >= 1 for r in (a, b))  # noqa: E731
        assert wait_for(both)
        live = q.snapshot()
        assert {live[a]["device"], live[b]["device"]} == {"cpu#0", "cpu#1"}
        assert q.cancel(a) and q.cancel(b)
        assert q.wait(60)
        third = q.submit(tiny(2, epochs=1))  # a freed worker takes the next run
        assert q.wait(120)
    finally:
        q.shutdown()
    sa, sb = store.status(a), store.status(b)
    assert sa["state"] == sb["state"] == "cancelled"
    assert sa["device"] == sb["device"] == "cpu" and {sa["worker"], sb["worker"]} == {"cpu#0", "cpu#1"}
    assert sa["started"] <= sb["finished"] and sb["started"] <= sa["finished"]
    assert store.status(third)["state"] == "done" and store.status(third)["worker"] in ("cpu#0", "cpu#1")
    assert store.config(a).train.device == "auto"  # config.json keeps what was asked; the key is unchanged
    assert store.metrics(third)["train"]["device"] == "cpu"


@pytest.mark.slow
def test_process_exit_mid_run_leaves_it_interrupted_without_an_abort(tmp_path):
    """Stopping the app mid-run (the interpreter exits while a worker trains) must not abort the
    process ("terminate called without an active exception"); the run is left interrupted, resumable."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import time
        from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
        from medtl.jobs import JobQueue
        from medtl.runs import RunStore
        store = RunStore({str(tmp_path / "runs")!r})
        q = JobQueue(store, devices="cpu")
        cfg = RunConfig(DataConfig(n_images=120, image_size=32), ModelConfig(cut="layer1"),
                        TrainConfig(epochs=200, batch_size=16))
        rid = q.submit(cfg)
        while store.status(rid).get("progress", {{}}).get("batch") is None:
            time.sleep(0.05)
        print(rid, flush=True)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "terminate called" not in out.stderr
    rid = out.stdout.split()[-1]
    st = RunStore(tmp_path / "runs").status(rid)
    assert st["state"] == "interrupted" and "resume" in st["error"]
