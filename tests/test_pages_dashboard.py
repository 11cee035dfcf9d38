"""AppTest tests for pages/2_Train.py, pages/3_Compare.py and pages/4_Grad-CAM.py."""

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from medtl.cli import main
from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from medtl.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
TRAIN, COMPARE, GRADCAM = (str(ROOT / "pages" / p) for p in ("2_Train.py", "3_Compare.py", "4_Grad-CAM.py"))


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory):
    """Four tiny finished runs (2 cuts x 2 seeds) and one failed run."""
    runs = tmp_path_factory.mktemp("runs")
    assert (
        main(
            [
                "sweep",
                "--cut",
                "layer1,layer2",
                "--init",
                "random",
                "--seed",
                "0,1",
                "--n-images",
                "160",
                "--image-size",
                "32",
                "--epochs",
                "1",
                "--batch-size",
                "16",
                "--runs-dir",
                str(runs),
            ]
        )
        == 0
    )
    store = RunStore(runs)
    bad = RunConfig(
        DataConfig(n_images=160, image_size=32),
        ModelConfig("resnet18", "truncate", "layer1", "file:/no/such.pt"),
        TrainConfig(epochs=1),
    )
    from medtl import train

    rid = store.create(bad)
    train.run(bad, store, rid)
    return runs


def _app(path: str) -> AppTest:
    return AppTest.from_file(path, default_timeout=180)


@pytest.mark.slow
def test_train_page_empty_state_and_defaults():
    at = _app(TRAIN).run()
    assert not at.exception
    assert any("No runs yet" in i.value for i in at.info)
    assert at.button(key="queue_btn").label == "Queue 1 run"
    assert any("train 2100" in c.value for c in at.caption)  # live split counts


@pytest.mark.parametrize(
    "setup, message",
    [
        ({"ds_kind": "folder", "ds_path": "/no/such/folder"}, "does not exist"),
        ({"backbone": "cbr_tiny", "strategy": "finetune"}, "at least 91 px"),
        ({"train_size": "0.001"}, "too small"),
        ({"seeds": "a,b"}, "Seeds are whole numbers separated by commas"),
        ({"lr": 100.0}, "lr must be in (0, 1]. Got 100.0"),
        ({"epochs": 0}, "epochs must be at least 1. Got 0"),
    ],
)
@pytest.mark.slow
def test_train_page_bad_input_is_shown_and_blocks_queueing(setup, message):
    at = _app(TRAIN).run()
    for key, value in setup.items():
        if key in ("ds_kind", "backbone", "strategy"):
            widget = at.selectbox(key=key)
        elif key in ("lr", "epochs"):
            widget = at.number_input(key=key)
        else:
            widget = at.text_input(key=key)
        widget.set_value(value).run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="queue_btn").disabled


def test_train_page_upload_gives_the_cli_message_for_a_wrong_type(tmp_path, capsys):
    """The same file on the CLI and on the Train page's upload: the same one-line message."""
    import json

    from ui.forms import read_config

    raw = json.dumps({"train": {"weight_decay": "0.1"}}).encode()
    cfg, message = read_config(raw)
    (tmp_path / "c.json").write_bytes(raw)
    assert main(["train", "--config", str(tmp_path / "c.json"), "--runs-dir", str(tmp_path)]) == 2
    cli = capsys.readouterr().err.strip().removeprefix("medtl train: error: ")
    assert cfg is None and message == f"This file is not a valid run config: {cli}"
    assert cli == "weight_decay must be a number in [0, 1). Got '0.1'"
    assert read_config(b"[1]")[1].endswith("RunConfig expects a JSON object. Got list")
    good, message = read_config(RunConfig().to_json().encode())
    assert good == RunConfig() and not message


@pytest.mark.slow
def test_train_page_shows_the_positive_class_it_chose(tmp_path):
    from data_fixtures import make_class_folders

    root = make_class_folders(tmp_path / "xr", ("normal", "abnormal"), n=20)
    at = _app(TRAIN).run()
    at.selectbox(key="ds_kind").set_value("folder").run()
    at.text_input(key="ds_path").set_value(str(root)).run()
    assert not at.exception
    assert any("'abnormal'" in i.value and "negative class" in i.value for i in at.info), [i.value for i in at.info]


@pytest.mark.slow
def test_train_page_flags_a_config_already_done(finished_runs, monkeypatch):
    """Issue 12: the same config as a finished run is flagged; Queue takes only new runs unless the
    user asks for a repeat on purpose."""
    monkeypatch.setenv("MEDTL_RUNS", str(finished_runs))
    store = RunStore(finished_runs)
    done = next(r for r in store.ids() if store.status(r)["state"] == "done")
    cfg = store.config(done)
    at = _app(TRAIN).run()
    at.number_input(key="n_images").set_value(cfg.data.n_images).run()
    at.number_input(key="image_size").set_value(cfg.data.image_size).run()
    at.selectbox(key="cut").set_value(cfg.model.cut).run()
    at.number_input(key="epochs").set_value(cfg.train.epochs).run()
    at.number_input(key="batch_size").set_value(cfg.train.batch_size).run()
    at.text_input(key="seeds").set_value(str(cfg.train.seed)).run()
    assert not at.exception
    assert any(done in w.value and "already done or queued" in w.value for w in at.warning), [
        w.value for w in at.warning
    ]
    assert at.button(key="queue_btn").disabled and at.button(key="queue_btn").label == "Queue"
    assert any("a repeat is another seed" in w.value for w in at.warning)  # each run is trained once
    at.text_input(key="seeds").set_value(f"{cfg.train.seed}, 7").run()  # the repeat the user means: a new seed
    assert at.button(key="queue_btn").label == "Queue 1 run" and not at.button(key="queue_btn").disabled


@pytest.mark.slow
def test_train_page_imagenet_offline_message():
    at = _app(TRAIN).run()
    at.selectbox(key="init").set_value("imagenet").run()
    assert any("not available offline" in e.value and "--download resnet18" in e.value for e in at.error)
    assert at.button(key="queue_btn").disabled


@pytest.mark.slow
def test_train_page_vit_image_size_is_a_multiple_of_its_patches():
    """The added families are on the form; a ViT at 40 px is refused with the reason (its cost table at 48 px)."""
    at = _app(TRAIN).run()
    assert {"convnext_tiny", "vit_b_16"} <= set(at.selectbox(key="backbone").options)
    at.selectbox(key="backbone").set_value("vit_b_16").run()
    at.number_input(key="image_size").set_value(40).run()
    assert not at.exception, at.exception
    assert any("multiple of its 16 px patches" in e.value for e in at.error)
    assert at.button(key="queue_btn").disabled


def _tiny_form(at: AppTest, epochs: int) -> AppTest:
    at.number_input(key="n_images").set_value(120).run()
    at.number_input(key="image_size").set_value(32).run()
    at.number_input(key="epochs").set_value(epochs).run()
    at.number_input(key="batch_size").set_value(16).run()
    return at


@pytest.mark.slow
def test_train_page_queue_watch_and_cancel(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTL_RUNS", str(tmp_path / "runs"))
    at = _tiny_form(_app(TRAIN).run(), epochs=200)
    at.button(key="queue_btn").click().run()
    store = RunStore(tmp_path / "runs")
    assert len(store.ids()) == 1
    rid = store.ids()[0]
    end = time.time() + 60
    while store.status(rid).get("state") != "running" and time.time() < end:
        time.sleep(0.1)
    at.run()
    assert any("running" in m.value for m in at.markdown)
    assert any("on `cpu`" in m.value for m in at.markdown)  # the worker's device on the run card
    at.button(key=f"cancel_{rid}").click().run()
    end = time.time() + 30
    while store.status(rid)["state"] != "cancelled" and time.time() < end:
        time.sleep(0.1)
    assert store.status(rid)["state"] == "cancelled"
    at.run()
    assert any(b.key == f"resume_{rid}" for b in at.button)


@pytest.mark.slow
def test_train_page_compile_option_reaches_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTL_RUNS", str(tmp_path / "runs"))
    at = _tiny_form(_app(TRAIN).run(), epochs=1)
    at.checkbox(key="compile").check().run()
    at.button(key="queue_btn").click().run()
    store = RunStore(tmp_path / "runs")
    rid = store.ids()[0]
    assert store.config(rid).train.compile is True
    end = time.time() + 300
    while store.status(rid).get("state") not in ("done", "failed", "cancelled") and time.time() < end:
        time.sleep(0.2)
    assert store.status(rid)["state"] == "done", store.status(rid).get("error")
    assert store.metrics(rid)["train"]["compiled"] is True


@pytest.mark.slow
def test_train_page_sweep_counts_runs():
    at = _app(TRAIN).run()
    at.toggle(key="sweep").set_value(True).run()
    at.multiselect(key="cuts").set_value(["layer1", "layer2", "layer3"]).run()
    at.text_input(key="seeds").set_value("0, 1").run()
    assert at.button(key="queue_btn").label == "Queue 6 runs"


@pytest.mark.slow
def test_train_page_shows_failed_runs_message(finished_runs, monkeypatch):
    monkeypatch.setenv("MEDTL_RUNS", str(finished_runs))
    at = _app(TRAIN).run()
    assert any("no/such.pt does not exist" in e.value for e in at.error)


def test_compare_page_empty_state():
    at = _app(COMPARE).run()
    assert not at.exception
    assert any("No runs yet" in i.value for i in at.info)


@pytest.mark.slow
def test_compare_page_with_runs(finished_runs, monkeypatch):
    monkeypatch.setenv("MEDTL_RUNS", str(finished_runs))
    at = _app(COMPARE).run()
    assert not at.exception, at.exception
    table = at.dataframe[1].value if len(at.dataframe) > 1 else at.dataframe[0].value
    assert len(table) == 4 and "AUROC" in table.columns
    assert {"sensitivity", "specificity", "PPV", "Brier", "ECE"} <= set(table.columns)
    # ROC, PR, reliability, decision curve, truncation, seeds
    assert len(at.get("plotly_chart")) == 6
    ids = {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    assert {"roc", "pr", "reliability", "decision", "trunc", "seeds"} <= ids
    op = next(d.value for d in at.dataframe if "threshold (validation)" in d.value.columns)
    assert len(op) == 4 and {"threshold (validation)", "PPV", "flagged / 1000"} <= set(op.columns)
    at.selectbox(key="metric").set_value("test.auprc").run()
    at.selectbox(key="secondary").set_value("model.latency_ms").run()
    at.multiselect(key="f_model.cut").set_value(["layer1"]).run()
    assert not at.exception
    at.multiselect(key="f_model.cut").set_value([]).run()
    assert any("No run matches" in w.value for w in at.warning)


@pytest.mark.slow
def test_gradcam_page(finished_runs, monkeypatch):
    monkeypatch.setenv("MEDTL_RUNS", str(finished_runs))
    empty = _app(GRADCAM)
    monkeypatch.setenv("MEDTL_RUNS", str(finished_runs.parent / "nothing"))
    empty.run()
    assert any("No finished runs" in i.value for i in empty.info)
    monkeypatch.setenv("MEDTL_RUNS", str(finished_runs))
    at = _app(GRADCAM).run()
    assert not at.exception, at.exception
    assert len(at.get("image")) >= 6  # 6 positives x at least one run
    for kind in ("TP", "FN", "all", "by index"):
        at.selectbox(key="kind").set_value(kind).run()
        assert not at.exception
    at.text_input(key="indices").set_value("99999").run()
    assert any("not in the test split" in e.value for e in at.error)


@pytest.mark.slow
def test_every_page_opens_with_damaged_runs(finished_runs, tmp_path, monkeypatch):
    """Random bytes in one run's metrics.json, a truncated predictions.npz and model.pt in two others: every page
    opens, the pages that list runs say which are damaged, and the good run is still there."""
    import shutil

    from medtl.runs import RunStore
    from ui.nav import PAGES

    runs = tmp_path / "runs"
    shutil.copytree(finished_runs, runs)
    store = RunStore(runs)
    done = [r for r in store.ids() if store.status(r)["state"] == "done"]
    assert len(done) == 4
    (runs / done[0] / "metrics.json").write_bytes(bytes(range(256)) * 4)
    p = runs / done[1] / "predictions.npz"
    p.write_bytes(p.read_bytes()[:200])
    m = runs / done[2] / "model.pt"
    m.write_bytes(m.read_bytes()[:1000])
    monkeypatch.setenv("MEDTL_RUNS", str(runs))
    for page in ["app.py", *PAGES]:
        at = _app(str(ROOT / page)).run()
        assert not at.exception, (page, at.exception)
        labels = [e.label for e in at.expander]
        if page in ("pages/2_Train.py", "pages/3_Compare.py", "pages/4_Grad-CAM.py", "pages/5_Study.py"):
            assert any("damaged run(s)" in x for x in labels), (page, labels)
    at = _app(COMPARE).run()
    (table,) = [d.value for d in at.dataframe if "AUROC" in d.value]
    listed = set(table["id"])
    assert done[3] in listed and not listed & {done[0], done[1]}  # the good one listed, no damaged one
