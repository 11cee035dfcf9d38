"""The runs folder shared by many writers (issue 20): each run trained once, a dead writer's run resumed in
its folder, one damaged file never breaking the others, faults said in one line."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from compare_fixtures import mixed_runs

from medtl.claims import Claims
from medtl.cli import main
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.runs import RunStore, StoreWriteError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--n-images", "120", "--image-size", "32", "--epochs", "1", "--batch-size", "16"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def tiny(seed: int = 0, cut: str = "layer1", epochs: int = 1) -> RunConfig:
    return RunConfig(
        DataConfig(n_images=120, image_size=32, seed=seed),
        ModelConfig(cut=cut),
        TrainConfig(epochs=epochs, batch_size=16, seed=seed, bootstrap=50, device="cpu"),
    )


# --- damaged runs -------------------------------------------------------------------------------------


def _damage(store: RunStore) -> dict[str, str]:
    """Five runs made to order, four of them damaged one way each: run id -> how."""
    ids = [r for ids in mixed_runs(store).values() for r in ids]
    how = {
        ids[0]: "metrics.json random bytes",
        ids[1]: "status.json not UTF-8",
        ids[2]: "metrics.json wrong shape",
        ids[3]: "predictions.npz truncated",
    }
    rng = np.random.default_rng(0)
    (store.path(ids[0]) / "metrics.json").write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    (store.path(ids[1]) / "status.json").write_bytes(b'{"state": "done", "name": "\xf1"}')
    (store.path(ids[2]) / "metrics.json").write_text(json.dumps({"test": 5}))
    p = store.path(ids[3]) / "predictions.npz"
    p.write_bytes(p.read_bytes()[:100])
    return how


def test_damaged_runs_are_listed_and_never_break_the_others(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    how = _damage(store)
    n = len(store.ids())
    args = ["--runs-dir", str(store.root)]
    assert main(["runs", "--json", *args]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert len(rows) == n  # every run listed
    damaged = {r for r, row in rows.items() if row["state"] == "damaged"}
    assert damaged == set(how)  # a truncated npz too: its zip directory is looked at when the run is read
    first = rows[list(how)[0]]["error"]
    assert "metrics.json" in first and "not UTF-8 text" in first
    assert "status.json: not UTF-8" in rows[list(how)[1]]["error"]
    assert "section 'test' must be an object" in rows[list(how)[2]]["error"]
    assert main(["runs", *args]) == 0
    assert "damaged" in capsys.readouterr().out
    assert main(["runs", "--check", *args]) == 1
    out = capsys.readouterr().out
    assert all(r in out for r in how) and "predictions.npz: not a readable .npz" in out
    # a comparison with the truncated run names it, in one line
    good = next(r for r in store.ids() if r not in how)
    assert main(["compare", list(how)[3], good, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"Run {list(how)[3]} is damaged: predictions.npz" in err[0]
    # the table and experiments leave the damaged runs out, the others are there
    t = store.table()
    assert set(t["id"]) == set(store.ids()) - damaged
    assert not set(store.experiments().values()) & damaged


@pytest.mark.slow
def test_runs_check_finds_a_truncated_checkpoint(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", *TINY, "--runs-dir", str(runs)]) == 0
    capsys.readouterr()
    store = RunStore(runs)
    (rid,) = store.ids()
    assert main(["runs", "--check", "--runs-dir", str(runs)]) == 0
    assert "all 1 run(s) readable" in capsys.readouterr().out
    p = store.path(rid) / "model.pt"
    p.write_bytes(p.read_bytes()[:1000])
    assert main(["runs", "--check", "--runs-dir", str(runs)]) == 1
    assert f"Run {rid} is damaged: model.pt: cannot be loaded" in capsys.readouterr().out


# --- claims: each run once ------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_sweeps_started_together_train_each_run_once(tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "medtl", "sweep", "--cut", "layer1,layer2", *TINY, "--runs-dir", str(runs)]
    procs = [subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in (0, 1)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    store = RunStore(runs)
    assert len(store.ids()) == 2, [store.status(r) for r in store.ids()]
    assert {store.status(r)["state"] for r in store.ids()} == {"done"}
    said = "".join(o[0] + o[1] for o in outs)
    assert "skip (" in said  # the second writer said why it did not train a run
    assert not list((runs / ".claims").glob("*.json"))  # finished runs hold no claim


@pytest.mark.slow
def test_a_killed_study_run_is_resumed_in_place(tmp_path):
    runs = tmp_path / "runs"
    args = ["study", "run", "--name", "k", "--n-images", "120", "--image-size", "32", "--epochs", "3"]
    args += ["--cuts", "layer1", "--runs-dir", str(runs)]
    proc = subprocess.Popen([sys.executable, "-m", "medtl", *args], env=ENV, stderr=subprocess.PIPE, text=True)
    store = RunStore(runs)
    end = time.time() + 300
    while time.time() < end:  # kill it once its first run has a checkpoint
        ids = store.ids()
        if ids and (store.path(ids[0]) / "last.pt").exists():
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    (first,) = store.ids()
    assert store.status(first)["state"] == "interrupted"  # its writer is gone: every reader says so
    again = subprocess.run([sys.executable, "-m", "medtl", *args], env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming the folder a stopped writer left" in again.stderr
    assert len(store.ids()) == 2 and store.ids()[0] == first  # layer1 resumed in its folder, then full
    assert {store.status(r)["state"] for r in store.ids()} == {"done"}
    assert [h["epoch"] for h in store.history(first)] == [1, 2, 3]


def test_claims_live_dead_and_taken_over(tmp_path):
    store = RunStore(tmp_path / "runs")
    cfg = tiny()
    rid = store.create(cfg)
    assert store.start(cfg).action == "busy"  # this process holds it (alive)
    claims = Claims(store.root)
    # the holder is on another host and its heartbeat is old: dead, taken over, the folder resumed
    claims.path(cfg.key()).write_text(json.dumps({"run_id": rid, "host": "node-17", "pid": 1234}))
    old = time.time() - 3600
    os.utime(claims.path(cfg.key()), (old, old))
    store.write_status(rid, host="node-17", pid=1234, state="running")
    assert store.status(rid)["state"] == "interrupted"
    start = store.start(cfg)
    assert (start.action, start.run_id) == ("resume", rid) and start.holder["host"] == "node-17"
    assert claims.read(cfg.key())["host"] == socket.gethostname()
    # a live holder on another host (fresh heartbeat) is left alone
    claims.path(cfg.key()).write_text(json.dumps({"run_id": rid, "host": "node-17", "pid": 1234}))
    assert store.start(cfg).action == "busy"
    assert len(store.ids()) == 1


# --- faults ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_the_run_is_failed_with_it(tmp_path, monkeypatch):
    from medtl import train

    store = RunStore(tmp_path / "runs")
    cfg = tiny(epochs=2)
    rid = store.create(cfg)
    real = store.save_checkpoint

    def full(run_id, name, obj):  # the disk fills up while the second epoch's checkpoint is written
        if len(store.history(run_id)) >= 2:
            raise StoreWriteError(
                errno.ENOSPC, f"No space left on device writing {store.path(run_id) / name} (0 kB free)"
            )
        return real(run_id, name, obj)

    monkeypatch.setattr(store, "save_checkpoint", full)
    status = train.run(cfg, store, rid)
    assert status["state"] == "failed" and status["error"].startswith("No space left on device writing ")
    assert (store.path(rid) / "model.pt").is_file() and len(store.history(rid)) == 2  # earlier files intact


def test_atomic_write_says_which_file_and_keeps_the_old_one(tmp_path):
    from medtl.run_files import atomic_write

    p = tmp_path / "x.json"
    atomic_write(p, "old")

    def fail(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StoreWriteError, match=r"No space left on device writing .*x\.json \(\d+ [kM]B free\)"):
        atomic_write(p, fail)
    assert p.read_text() == "old" and [q.name for q in tmp_path.iterdir()] == ["x.json"]

    def torch_full(f):  # torch.save on a full disk
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    with pytest.raises(StoreWriteError, match="No space left on device writing"):
        atomic_write(p, torch_full)


def test_files_follow_the_umask(tmp_path):
    store = RunStore(tmp_path / "runs")
    rid = store.create(tiny())
    mode = (store.path(rid) / "status.json").stat().st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask  # not 0600: a shared runs folder is readable by the group


# --- inputs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size, says", [("200%", "at most 100%"), ("nan", "train_size must be"), ("0", "positive")])
def test_bad_training_sizes_are_refused_with_nothing_recorded(tmp_path, capsys, size, says):
    runs = tmp_path / "runs"
    assert main(["train", *TINY, "--train-size", size, "--runs-dir", str(runs)]) == 2
    assert says in capsys.readouterr().err
    assert not RunStore(runs).ids()


def test_names_end_where_they_end(tmp_path):
    store = RunStore(tmp_path)
    for bad in ("abc\n", "abc/..", ".hidden", ""):
        with pytest.raises(ValueError, match="Invalid run id"):
            store.path(bad)
    from medtl import study

    with pytest.raises(ValueError, match="name must be"):
        study.StudyConfig("demo\n")


def test_a_bug_is_a_short_traceback_not_a_user_error(monkeypatch, capsys):
    from medtl.cli import explore

    def broken(a):
        return {}["test"]  # a programming error, not bad input

    monkeypatch.setattr(explore, "toy_run", broken)
    from medtl import cli

    monkeypatch.setitem(cli.COMMANDS, "toy", (cli.COMMANDS["toy"][0], cli.COMMANDS["toy"][1], broken))
    assert main(["toy"]) == 1
    err = capsys.readouterr().err
    assert "internal error (a bug in MedTL): KeyError: 'test'" in err and "MEDTL_DEBUG=1" in err


def test_run_states_are_strings_in_status_files(tmp_path):
    from medtl.states import ACTIVE, FINISHED, STATES, STOPPED, State

    assert STATES == ("queued", "running", "done", "failed", "cancelled", "interrupted")
    assert set(ACTIVE) | set(FINISHED) == set(STATES) and set(STOPPED) == set(FINISHED) - {State.DONE}
    store = RunStore(tmp_path)
    run_id = store.create(RunConfig(), state=State.QUEUED)
    store.write_status(run_id, state=State.FAILED)
    assert json.loads((store.path(run_id) / "status.json").read_text())["state"] == "failed"
    # the pages and ui/ import it: it loads nothing of the library
    code = "import sys, medtl.states; print(sorted(m for m in sys.modules if m.startswith('medtl.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV).stdout
    assert out.strip() == "['medtl.states']"
