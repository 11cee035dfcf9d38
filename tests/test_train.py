import json
import os
import signal
import subprocess
import sys
import time

import pytest

from medtl import train
from medtl.cli import main
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.jobs import JobQueue
from medtl.models.registry import check_run
from medtl.runs import RunStore

CONTRACT = ("config.json", "status.json", "history.jsonl", "metrics.json", "predictions.npz", "model.pt")


def tiny(**train_kw) -> RunConfig:
    t = {"epochs": 2, "batch_size": 16, "bootstrap": 50, **train_kw}
    return RunConfig(
        DataConfig(n_images=120, image_size=32),
        ModelConfig("resnet18", "truncate", "layer1", "random"),
        TrainConfig(**t),
    )


def wait_for(pred, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_tiny_run_end_to_end(tmp_path):
    store = RunStore(tmp_path)
    cfg = tiny()
    rid = store.create(cfg)
    events = []
    status = train.run(cfg, store, rid, callback=events.append)
    assert status["state"] == "done", status
    for f in CONTRACT:
        assert (store.path(rid) / f).is_file(), f
    assert not (store.path(rid) / "last.pt").exists()
    m = store.metrics(rid)
    for key in ("auroc", "auprc", "auroc_ci", "auprc_ci", "n", "n_pos"):
        assert key in m["test"]
    assert m["test"]["auroc_ci"][0] <= m["test"]["auroc"] <= m["test"]["auroc_ci"][1]
    for key in ("n", "n_pos", "images_per_s", "seconds"):
        assert key in m["train"]
    for key in ("params", "macs", "latency_ms"):
        assert m["model"][key] > 0
    assert len(store.history(rid)) == 2
    assert {e["type"] for e in events} >= {"batch", "epoch", "status"}
    pred = store.predictions(rid)
    assert pred["y_score"].shape == pred["y_true"].shape == (m["test"]["n"],)
    assert store.config(rid) == cfg
    assert RunConfig.load(store.path(rid) / "config.json") == cfg  # re-runnable from its config
    table = store.table()
    assert table.loc[0, "test.auroc"] == m["test"]["auroc"] and table.loc[0, "model.backbone"] == "resnet18"


@pytest.mark.slow
def test_same_seed_same_first_epoch_loss(tmp_path):
    store = RunStore(tmp_path)
    losses = []
    for _ in range(2):
        rid = store.create(tiny(epochs=1))
        train.run(store.config(rid), store, rid)
        losses.append(store.history(rid)[0]["train_loss"])
    assert losses[0] == losses[1]
    rid = store.create(tiny(epochs=1, seed=1))
    train.run(store.config(rid), store, rid)
    assert store.history(rid)[0]["train_loss"] != losses[0]


@pytest.mark.slow
def test_queue_cancel_mid_epoch_and_failure_isolation(tmp_path):
    store = RunStore(tmp_path)
    q = JobQueue(store)
    try:
        slow = q.submit(tiny(epochs=50))
        assert wait_for(lambda: q.snapshot().get(slow, {}).get("batch", 0) >= 2)
        t = time.time()
        assert q.cancel(slow)
        assert wait_for(lambda: store.status(slow)["state"] == "cancelled", 30)
        assert time.time() - t < 10  # within about one batch

        bad = tiny(epochs=1)
        bad = bad.replace(model=bad.model.replace(init=f"file:{tmp_path / 'missing.pt'}"))
        failing, healthy = q.submit(bad), q.submit(tiny(epochs=1))
        queued = q.submit(tiny(epochs=1, seed=5))
        q.cancel(queued)  # cancelled while queued: never runs
        assert q.wait(180)
        assert store.status(failing)["state"] == "failed"
        assert "missing.pt does not exist" in store.status(failing)["error"]
        assert store.status(healthy)["state"] == "done"
        assert store.status(queued)["state"] == "cancelled"
    finally:
        q.shutdown()


@pytest.mark.slow
def test_killed_process_is_interrupted_then_resumed(tmp_path):
    """A real training process is killed after its first epoch; recovery marks the run interrupted
    and resume continues from the epoch checkpoint."""
    store = RunStore(tmp_path)
    cfg = tiny(epochs=3)
    rid = store.create(cfg)
    # The child dies by SIGKILL (no cleanup at all) right after its first epoch checkpoint is written:
    # a deterministic point, whatever the machine's speed.
    code = (
        "import os, signal; from medtl.runs import RunStore; from medtl import train\n"
        f"s = RunStore({str(tmp_path)!r})\n"
        "die = lambda e: os.kill(os.getpid(), signal.SIGKILL) if e.get('type') == 'epoch' and e['epoch'] == 1 else None\n"
        f"train.run(s.config({rid!r}), s, {rid!r}, callback=die)"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ}, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert len(store.history(rid)) == 1 and (store.path(rid) / "last.pt").exists()
    # every reader sees it interrupted at once (its claim's process is gone), not only after an app start
    st = store.status(rid)
    assert st["state"] == "interrupted" and st["written_state"] == "running" and "resume it" in st["error"]
    assert store.orphans() == [rid]
    q = JobQueue(store)  # start-up recovery records it
    try:
        assert q.interrupted == [rid]
        assert store.status(rid)["state"] == "interrupted"
        q.resume(rid)
        assert q.wait(180)
    finally:
        q.shutdown()
    assert store.status(rid)["state"] == "done"
    epochs = [h["epoch"] for h in store.history(rid)]
    assert epochs == [1, 2, 3]


def test_nan_loss_is_a_readable_failure(tmp_path):
    """A backbone initialised from a file holding a NaN weight makes the first loss NaN."""
    import torch

    from medtl.models import build

    cfg = tiny(epochs=1)
    src = build(cfg.model, 32)
    with torch.no_grad():
        src.backbone.conv1.weight[0, 0, 0, 0] = float("nan")
    torch.save(src.state_dict(), tmp_path / "nan.pt")
    store = RunStore(tmp_path / "runs")
    bad = cfg.replace(model=cfg.model.replace(init=f"file:{tmp_path / 'nan.pt'}"))
    rid = store.create(bad)
    status = train.run(bad, store, rid)
    assert status["state"] == "failed"
    assert "The loss became nan at epoch 1, batch 1" in status["error"] and "Lower the learning rate" in status["error"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs must be"),
        ({"lr": 5}, "lr must be"),
        ({"optimizer": "lion"}, "optimizer must be one of"),
        ({"device": "tpu"}, "device must be one of"),
        ({"select_by": "acc"}, "select_by must be"),
        ({"compile": "yes"}, "compile must be true or false"),
    ],
)
def test_train_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


@pytest.mark.slow
def test_compiled_run_trains_and_saves_plain_checkpoints(tmp_path):
    """--compile: the training step goes through torch.compile (inductor, a real C++ build on CPU);
    evaluation and checkpoints use the eager module, so model.pt loads into a plain model."""
    import torch

    from medtl.explain import load_model

    torch._dynamo.reset()
    store = RunStore(tmp_path)
    cfg = tiny(epochs=1, compile=True)
    rid = store.create(cfg)
    events = []
    status = train.run(cfg, store, rid, callback=events.append)
    assert status["state"] == "done", status
    assert store.metrics(rid)["train"]["compiled"] is True
    assert any("compiling the training step" in e.get("phase", "") for e in events)
    state = torch.load(store.path(rid) / "model.pt", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in k for k in state)
    assert isinstance(load_model(store, rid), torch.nn.Module)
    eager = store.create(tiny(epochs=1))
    train.run(store.config(eager), store, eager)
    # the same seed and data: the first epoch's loss agrees with the eager run to float tolerance
    assert store.history(rid)[0]["train_loss"] == pytest.approx(store.history(eager)[0]["train_loss"], rel=1e-3)


@pytest.mark.slow
def test_compile_failure_is_a_readable_failure(tmp_path, monkeypatch):
    """A machine without a working C++ compiler: the run fails with one line saying what to do."""
    import torch
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)
    monkeypatch.setattr(inductor_config.cpp, "cxx", ("/nonexistent/c++",))
    store = RunStore(tmp_path / "runs")
    cfg = tiny(epochs=1, compile=True)
    rid = store.create(cfg)
    status = train.run(cfg, store, rid)
    torch._dynamo.reset()
    assert status["state"] == "failed"
    assert status["error"].startswith("torch.compile could not compile the training step")
    assert "Train without compile" in status["error"] and "\n" not in status["error"]


@pytest.mark.slow
def test_multiclass_dataset_trains_with_weighted_cross_entropy(tmp_path):
    """A MedMNIST class-id file with 3 classes and finding=all: one softmax over the classes."""
    import numpy as np
    from data_fixtures import make_medmnist

    from medtl.data import load

    f = make_medmnist(tmp_path / "bloodmnist.npz", classes=3)
    data_cfg = DataConfig(dataset=f"medmnist:{f}", finding="all", image_size=28)
    assert load(data_cfg).exclusive
    assert not load(data_cfg.replace(finding=None)).exclusive  # class 0 vs the rest: binary
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig(
        data_cfg, ModelConfig("resnet18", "truncate", "layer1", "random"), TrainConfig(epochs=1, batch_size=8)
    )
    rid = store.create(cfg)
    status = train.run(cfg, store, rid)
    assert status["state"] == "done", status
    m = store.metrics(rid)
    assert m["train"]["loss"] == "cross_entropy"
    pred = store.predictions(rid)
    assert pred["y_score"].shape == pred["y_true"].shape == (12, 3)
    np.testing.assert_allclose(pred["y_score"].sum(axis=1), 1, rtol=1e-5)
    assert 0 <= m["test"]["auroc"] <= 1 and m["test"]["labels"] == ["0", "1", "2"]
    assert all(np.isfinite(m["test"]["auroc_ci"] + m["test"]["auprc_ci"]))  # a mean-over-labels interval


def test_loss_weights_balance_the_classes():
    import numpy as np
    import torch

    y = np.array([[1, 0, 0]] * 6 + [[0, 1, 0]] * 3 + [[0, 0, 1]] * 1, dtype=np.float32)
    ce = train.make_loss(y, True, "cpu")
    logits = torch.zeros(10, 3)
    # uniform logits: every image costs log 3, whatever the class weights
    assert float(ce(logits, torch.from_numpy(y))) == pytest.approx(np.log(3), rel=1e-6)
    yb = np.array([1, 0, 0, 0], dtype=np.float32)
    bce = train.make_loss(yb, False, "cpu")
    # pos_weight 3: a positive at logit 0 costs 3 log 2, a negative log 2
    assert float(bce(torch.zeros(4), torch.from_numpy(yb))) == pytest.approx((3 + 3) * np.log(2) / 4, rel=1e-6)


def test_run_config_checks_cbr_minimum():
    with pytest.raises(ValueError, match="at least 91 px"):
        check_run(RunConfig(DataConfig(image_size=64), ModelConfig("cbr_tiny", "finetune", "full", "random")))


# --- CLI -----------------------------------------------------------------------------------------

TINY_FLAGS = ["--n-images", "120", "--image-size", "32", "--epochs", "1", "--batch-size", "16"]
FOLDER_FLAGS = TINY_FLAGS[2:]  # --n-images is SynthCXR's: refused for a folder


@pytest.mark.slow
def test_cli_train_summary_and_bad_input(tmp_path, capsys):
    rc = main(
        [
            "train",
            "--backbone",
            "resnet18",
            "--strategy",
            "truncate",
            "--cut",
            "layer1",
            "--init",
            "random",
            "--runs-dir",
            str(tmp_path),
            *TINY_FLAGS,
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "test AUROC" in out and "AUPRC" in out
    first = out.split()[0]
    # the same config again (seed included): each run is trained once; a repeat is another seed
    again = ["train", "--backbone", "resnet18", "--strategy", "truncate", "--cut", "layer1", "--init", "random"]
    n = len(RunStore(tmp_path).ids())
    assert main([*again, "--runs-dir", str(tmp_path), *TINY_FLAGS]) == 0
    err = capsys.readouterr().err
    assert f"skip (done as {first})" in err and "for a repeat, give another --seed" in err
    assert len(RunStore(tmp_path).ids()) == n
    assert main(["train", "--backbone", "resnet18", "--cut", "layer9", "--runs-dir", str(tmp_path)]) == 2
    assert "Unknown cut 'layer9'" in capsys.readouterr().err
    # a mistyped path is bad input: exit 2, one line, no run recorded
    assert (
        main(
            ["train", "--dataset", "folder:/no/such/dir", "--finding", "x", "--runs-dir", str(tmp_path), *FOLDER_FLAGS]
        )
        == 2
    )
    assert "Image folder /no/such/dir does not exist" in capsys.readouterr().err
    # what only loading finds (here: a folder with one class) is refused too, before a run exists
    (tmp_path / "oneclass" / "pos").mkdir(parents=True)
    bad = ["--dataset", f"folder:{tmp_path / 'oneclass'}", "--finding", "pos"]
    assert main(["train", *bad, "--runs-dir", str(tmp_path / "r"), *FOLDER_FLAGS]) == 2
    assert "at least two class folders" in capsys.readouterr().err
    assert main(["train", *bad, "--runs-dir", str(tmp_path / "r"), *TINY_FLAGS]) == 2
    assert "--n-images is an option of SynthCXR, not of image folder" in capsys.readouterr().err
    assert main(["runs", "--runs-dir", str(tmp_path / "r"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["runs", "--runs-dir", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["state"] for r in rows] == ["done"]  # the same config once, however often asked


@pytest.mark.slow
def test_cli_sweep_runs_once_then_skips(tmp_path, capsys):
    args = [
        "sweep",
        "--cut",
        "layer1,layer2",
        "--init",
        "random",
        "--seed",
        "0,1",
        "--runs-dir",
        str(tmp_path),
        *TINY_FLAGS,
    ]
    assert main([*args, "--dry-run"]) == 0
    assert "4 run(s)" in capsys.readouterr().out
    assert main(args) == 0
    assert len(RunStore(tmp_path).ids()) == 4
    capsys.readouterr()
    assert main(args) == 0
    assert capsys.readouterr().out.count("skip (done") == 4
    assert len(RunStore(tmp_path).ids()) == 4
    # where and how fast a run executes is not part of the experiment: still nothing to do
    assert main([*args, "--device", "cpu", "--compile"]) == 0
    assert capsys.readouterr().out.count("skip (done") == 4
    assert len(RunStore(tmp_path).ids()) == 4
    assert main([*args, "--emit", str(tmp_path / "emit")]) == 0
    files = sorted((tmp_path / "emit").glob("*.json"))
    assert len(files) == 4
    assert main(["train", "--config", str(files[0]), "--runs-dir", str(tmp_path / "other")]) == 0


def test_cli_sweep_invalid_combination_runs_nothing(tmp_path, capsys):
    rc = main(
        ["sweep", "--backbone", "cbr_tiny", "--cut", "cbr1,cbr4", "--image-size", "64", "--runs-dir", str(tmp_path)]
    )
    assert rc == 2 and "invalid" in capsys.readouterr().err
    assert RunStore(tmp_path).ids() == []
    rc = main(["sweep", "--dataset", "csv:/no/such.csv", "--cut", "layer1,layer2", "--runs-dir", str(tmp_path)])
    assert rc == 2 and "CSV manifest /no/such.csv does not exist" in capsys.readouterr().err
    assert RunStore(tmp_path).ids() == []


# --- checkpoints, divergence, latency ---------------------------------------------------------------

# A test-only child: torch.save is wrapped so that the process dies by SIGKILL in the middle of its
# third checkpoint write (epoch 1 writes model.pt and last.pt; the third save is epoch 2's), after
# half the bytes reached the file: a deterministic "killed while saving", whatever the machine's speed.
KILL_DURING_SAVE = """
import io, os, signal, sys
import torch
from medtl.runs import RunStore
from medtl import train

calls = []
real_save = torch.save

def dying_save(obj, f, *args, **kwargs):
    calls.append(getattr(f, "name", f))
    if len(calls) < 3:
        return real_save(obj, f, *args, **kwargs)
    buf = io.BytesIO()
    real_save(obj, buf)
    f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = dying_save
s = RunStore(sys.argv[1])
train.run(s.config(sys.argv[2]), s, sys.argv[2])
"""


@pytest.mark.slow
def test_kill_during_checkpoint_save_then_resume_and_explain(tmp_path):
    """A process killed while writing a checkpoint leaves the previous model.pt and last.pt whole
    (they are written atomically): the run resumes to the end, and Grad-CAM loads its model."""
    import torch

    from medtl import checkpoint
    from medtl.explain import explain_run, load_model

    store = RunStore(tmp_path)
    cfg = tiny(epochs=3)
    rid = store.create(cfg)
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(tmp_path), rid], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    folder = store.path(rid)
    partial = [p.name for p in folder.glob(".*.pt.*")]
    assert len(partial) == 1, partial  # the half-written temporary file of the killed save
    # what a reader finds at the kill: both files whole, from epoch 1
    assert checkpoint.read(folder / "model.pt")["epoch"] == 1
    assert checkpoint.read(folder / "last.pt")["epoch"] == 0
    assert isinstance(load_model(store, rid), torch.nn.Module)

    q = JobQueue(store)  # start-up recovery: interrupted, then resumed from last.pt
    try:
        assert q.interrupted == [rid]
        q.resume(rid)
        assert q.wait(180)
    finally:
        q.shutdown()
    assert store.status(rid)["state"] == "done", store.status(rid)
    assert [h["epoch"] for h in store.history(rid)] == [1, 2, 3]
    assert not list(folder.glob(".*")) and not (folder / "last.pt").exists()
    result = explain_run(store, rid, n=2, sanity=False)
    assert result["run"] == rid and 0 < result["n"] <= 2 and 0 <= result["pointing_game"] <= 1


@pytest.mark.slow
def test_model_pt_records_the_network_as_built(tmp_path):
    """model.pt says what was built (outputs, channels, normalisation, size): a multi-label run has
    num_outputs = its labels although the config asked for 1; a file without the record (written
    before it existed) still loads by inference from its tensors."""
    import numpy as np
    import torch

    from medtl import checkpoint
    from medtl.explain import load_model
    from medtl.initialisations import state_dict

    store = RunStore(tmp_path / "runs")
    cfg = RunConfig(
        DataConfig(n_images=120, image_size=32, finding="all"),
        ModelConfig("resnet18", "truncate", "layer1", "random"),
        TrainConfig(epochs=1, batch_size=16, bootstrap=20),
    )
    rid = store.create(cfg)
    assert train.run(cfg, store, rid)["state"] == "done"
    ck = checkpoint.read(store.path(rid) / "model.pt")
    rec = ck["model"]
    n_labels = len(store.metrics(rid)["test"]["labels"])
    assert cfg.model.num_outputs == 1 and rec["config"]["num_outputs"] == n_labels > 1
    assert rec["in_channels"] == 1 and rec["image_size"] == 32
    np.testing.assert_allclose(rec["mean"], ck["state_dict"]["adapter.mean"].flatten().numpy(), rtol=1e-6)
    assert len(rec["mean"]) == len(rec["std"]) == 3  # one grey channel replicated to three
    model = load_model(store, rid)
    assert model.head[-1].out_features == n_labels
    assert set(checkpoint.run_state_dict(rid, store)) == {
        k[len("backbone.") :] for k in ck["state_dict"] if k.startswith("backbone.")
    }

    from medtl.models import build

    child_cfg = cfg.model.replace(init=f"run:{rid}")
    with pytest.raises(ValueError, match="caller that owns the RunStore"):
        build(child_cfg, 32)  # the model package never looks into a runs folder
    source = state_dict(child_cfg.init, child_cfg.backbone, child_cfg.weights, store)  # resolved by the store's owner
    child = build(child_cfg, 32, source=source)  # init from the run's backbone
    torch.testing.assert_close(child.backbone.conv1.weight, ck["state_dict"]["backbone.conv1.weight"])
    old = {k: v for k, v in ck.items() if k != "model"}  # the format before the record
    torch.save(old, store.path(rid) / "model.pt")
    again = load_model(store, rid)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))

    (store.path(rid) / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="Cannot read checkpoint .*model.pt"):
        load_model(store, rid)


def test_divergence_rules_on_histories():
    from medtl.monitors import divergence_warning

    def hist(losses, aurocs):
        return [
            {"epoch": i + 1, "val_loss": v, "val_auroc": a} for i, (v, a) in enumerate(zip(losses, aurocs, strict=True))
        ]

    healthy = hist([0.7, 0.5, 0.45], [0.7, 0.8, 0.85])
    assert divergence_warning(healthy, 0.69) is None
    # exploded within the first epoch (lr=1 in issue 12: 585.6 after epoch 1): against the chance loss
    w = divergence_warning(hist([585.6, 300.0], [0.48, 0.5]), 0.69)
    assert w.startswith("Training diverged") and "585.6" in w and "0.69" in w and "epoch 1" in w
    # exploded later: against the first epoch
    w = divergence_warning(hist([0.6, 0.5, 9.0], [0.7, 0.8, 0.6]), 0.69)
    assert "reached 9 at epoch 3" in w and "first epoch's 0.6" in w
    assert "became nan" in divergence_warning(hist([0.6, float("nan")], [0.7, float("nan")]), 0.69)
    # AUROC at chance for every epoch of a run of 3+ epochs; two epochs are too early to tell
    w = divergence_warning(hist([0.69, 0.69, 0.69], [0.5, 0.53, 0.46]), 0.69)
    assert w.startswith("The model did not learn") and "all 3 epochs" in w
    assert divergence_warning(hist([0.69, 0.69], [0.5, 0.5]), 0.69) is None
    assert divergence_warning(hist([0.69, 0.69, 0.69], [0.5, 0.5, 0.6]), 0.69) is None
    assert divergence_warning([], 0.69) is None


@pytest.mark.slow
def test_diverged_run_is_done_with_a_warning(tmp_path, capsys):
    """lr=1 (issue 12): the run ends done, with a warning in status, metrics and the CLI summary."""
    from medtl.cli.runs import _summary

    store = RunStore(tmp_path)
    cfg = tiny(epochs=2, lr=1.0)
    rid = store.create(cfg)
    status = train.run(cfg, store, rid)
    assert status["state"] == "done"
    assert status["warning"].startswith("Training diverged: the validation loss reached")
    assert store.status(rid)["warning"] == status["warning"]
    assert store.metrics(rid)["val"]["warning"] == status["warning"]
    assert store.table().loc[0, "val.warning"] == status["warning"]
    assert "warning: Training diverged" in _summary(store, rid, status)
    healthy = store.create(tiny(epochs=1))
    st = train.run(store.config(healthy), store, healthy)
    assert st["warning"] is None and "warning" not in _summary(store, healthy, st)


def test_nonfinite_loss_found_between_checks_names_the_batch(tmp_path):
    """On an accelerator the loss is checked every N steps (no host sync per step); the message
    still names the first bad batch and the checked range. Exercised on the CPU by the same code."""
    import torch

    losses = iter([1.0, 0.9, float("inf"), 0.8, 0.7])
    step = lambda x, y: torch.tensor(next(losses))  # noqa: E731 - a step whose loss goes bad at batch 3
    loader = [(torch.zeros(4, 1), torch.zeros(4), None)] * 5
    with pytest.raises(train.NonFiniteLoss, match=r"became inf at epoch 2, batch 3 \(checked batches 1-4\)"):
        train.train_one_epoch(step, loader, epoch=1, check_every=4)
    losses = iter([1.0, 3.0])
    assert train.train_one_epoch(step, loader[:2], epoch=0, check_every=50) == (2.0, 8)


def test_latency_counts_the_passes_cpu_time_and_restores_the_callers_settings():
    """The clock is the thread's CPU time, so time the process spends waiting (another process
    holding the core, here a sleep in the forward pass) is left out; the caller's thread count and
    train/eval mode are restored; the sample count honours ``min_samples``. No wall-clock bound on
    the machine's speed is asserted (the spread on a shared machine is in the README's Speed section)."""
    import torch

    from medtl.models.profile import latency

    class Waits(torch.nn.Module):
        def forward(self, x):
            time.sleep(0.004)  # 4 ms of waiting, no CPU work
            return x.mean()

    threads = torch.get_num_threads()
    model = Waits().train()
    r = latency(model, 8, min_time=0.05, warmup=0.01, min_samples=5)
    assert torch.get_num_threads() == threads and model.training  # restored
    assert r["samples"] >= 5 and r["iqr_ms"] >= 0
    assert 0 <= r["median_ms"] < 2.0, r  # a wall clock would read at least 4 ms per pass


def test_model_checkpoint_keeps_the_best_and_always_the_first(tmp_path):
    """Selection by validation loss: the first epoch is kept even with a NaN score (model.pt must
    exist for a diverged run), a finite score then wins, a worse or NaN one does not."""
    from medtl import checkpoint
    from medtl.models import build

    store = RunStore(tmp_path)
    cfg = tiny(epochs=1)
    rid = store.create(cfg)
    model = build(cfg.model, 32)
    sel = checkpoint.ModelCheckpoint(store, rid, "val_loss", {"config": cfg.model.to_dict()}, cfg.to_json())
    assert [
        sel.update(e, {"val_loss": v}, model) for e, v in enumerate([float("nan"), 0.9, 1.2, float("nan"), 0.5])
    ] == [
        True,
        True,
        False,
        False,
        True,
    ]
    assert sel.best_epoch == 4 and checkpoint.read(store.path(rid) / "model.pt")["epoch"] == 5
