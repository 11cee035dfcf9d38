"""AppTest (issue 19): the pages on a user's own data and on bad data — one clear message beside the form,
never Streamlit's redacted exception; a study's failed runs named and retried; the study just queued shown."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from data_fixtures import make_class_folders, make_own_data
from streamlit.testing.v1 import AppTest

from medtl import study
from medtl.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
TRAIN, STUDY, GRADCAM = (str(ROOT / "pages" / p) for p in ("2_Train.py", "5_Study.py", "4_Grad-CAM.py"))


def _app(path: str) -> AppTest:
    return AppTest.from_file(path, default_timeout=240)


def _errors(at: AppTest) -> list[str]:
    return [e.value.replace("\\", "") for e in at.error]  # messages escape what Markdown would read


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> dict[str, str]:
    return make_own_data(tmp_path_factory.mktemp("own"), n=120)


@pytest.mark.parametrize(
    "kind, path, says",
    [
        ("medmnist", "/no/such/file.npz", "MedMNIST file /no/such/file.npz does not exist"),
        ("folder", "/no/such/folder", "Image folder /no/such/folder does not exist"),
        ("csv", "/no/such.csv", "CSV manifest /no/such.csv does not exist"),
        ("chexpert", "/no/chexpert", "CheXpert folder /no/chexpert does not exist"),
    ],
)
@pytest.mark.slow
def test_train_page_bad_dataset_of_every_kind(kind, path, says):
    at = _app(TRAIN).run()
    at.selectbox(key="ds_kind").set_value(kind).run()
    at.text_input(key="ds_path").set_value(path).run()
    assert not at.exception
    assert any(says in e for e in _errors(at)), _errors(at)
    assert at.button(key="queue_btn").disabled


@pytest.mark.slow
def test_train_page_number_out_of_range_is_said_not_clamped():
    at = _app(TRAIN).run()
    at.number_input(key="image_size").set_value(5000).run()
    at.number_input(key="n_images").set_value(5).run()
    assert not at.exception
    errors = _errors(at)
    assert any("image_size must be in [28, 512]. Got 5000" in e for e in errors), errors
    assert any("n_images must be at least 20. Got 5" in e for e in errors), errors
    assert at.number_input(key="image_size").value == 5000  # what the user typed stays, with the message
    assert at.button(key="queue_btn").disabled


@pytest.mark.slow
def test_study_from_a_preset_on_own_data_takes_its_default_target(own):
    npz = next(s for s, k in own.items() if k == "medmnist").split(":", 1)[1]
    at = _app(STUDY).run()
    at.selectbox(key="study_start").set_value("quick").run()
    at.selectbox(key="s_quick_ds_kind").set_value("medmnist").run()
    at.text_input(key="s_quick_ds_path").set_value(npz).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="s_quick_finding_medmnist").value == "1"  # class 1 of a binary file
    assert any("class 1 of the binary labels" in i.value for i in at.info)
    assert "s_quick_n_images" not in [n.key for n in at.number_input]  # SynthCXR's option: not shown
    assert at.button(key="study_queue").label == "Queue 3 runs"
    at.button(key="study_queue").click().run()
    assert not at.exception
    s = study.load(RunStore(), "quick")
    assert s.base.data.dataset == f"medmnist:{npz}" and s.base.data.finding is None
    assert at.selectbox(key="study_pick").value == "quick"


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["missing", "empty_test", "one_percent"])
def test_study_page_bad_data_is_said_beside_the_form_and_saved_studies_stay(tmp_path, bad):
    store = RunStore()
    study.save(study.preset("quick").replace(name="kept"), store)  # a saved study: stays readable
    at = _app(STUDY).run()
    at.selectbox(key="study_start").set_value("quick").run()
    if bad == "one_percent":
        at.text_input(key="s_quick_train_size").set_value("100%, 1%").run()
        says = "training size 1% (seed 0) of study 'quick': train_size=0.01 is too small"
    else:
        root = tmp_path / "none" if bad == "missing" else make_class_folders(tmp_path / "six", n=3)
        at.selectbox(key="s_quick_ds_kind").set_value("folder").run()
        at.text_input(key="s_quick_ds_path").set_value(str(root)).run()
        says = "does not exist" if bad == "missing" else "The test split of folder:"
    assert not at.exception, at.exception
    assert any(says in e for e in _errors(at)), _errors(at)
    assert not [b for b in at.button if b.key == "study_queue"]  # nothing can be queued
    assert at.selectbox(key="study_pick").value == "kept"
    assert not RunStore().ids()


@pytest.mark.slow
def test_study_page_names_failed_runs_and_retries_them():
    store = RunStore()
    s = study.preset("quick").replace(name="failing", cuts=("layer1",))
    s = s.replace(base=s.base.replace(data=s.base.data.replace(n_images=120), train=s.base.train.replace(epochs=1)))
    study.save(s, store)
    ids = []
    for cfg in s.stage1():
        rid = store.create(cfg)
        store.write_status(rid, state="failed", error=f"Out of memory: lower the batch size ({cfg.model.cut})")
        ids.append(rid)
    at = _app(STUDY).run()
    assert not at.exception
    assert at.selectbox(key="study_pick").value == "failing"
    text = " ".join(t.value for t in at.text)
    assert all(r in text for r in ids) and "Out of memory: lower the batch size (layer1)" in text
    assert any("2 run(s) of this study did not finish" in m.value for m in at.markdown)
    at.button(key="study_retry").click().run()
    assert not at.exception
    assert {store.status(r)["state"] for r in ids} <= {"queued", "running", "done"}
    end = time.time() + 240
    while time.time() < end and {store.status(r)["state"] for r in ids} != {"done"}:
        time.sleep(0.5)
    assert {store.status(r)["state"] for r in ids} == {"done"}  # retried in place: the same run folders
    assert len(store.ids()) == 2


@pytest.mark.slow
def test_a_damaged_study_json_is_said_and_the_others_stay(tmp_path):
    store = RunStore()
    study.save(study.preset("quick").replace(name="good"), store)
    bad = store.root / "studies" / "broken" / "study.json"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\xf1 not json")
    os.utime(bad, (time.time() + 10, time.time() + 10))  # the newest: opened first
    at = _app(STUDY).run()
    assert not at.exception
    assert any("Study 'broken' cannot be read" in e for e in _errors(at)), _errors(at)
    at.selectbox(key="study_pick").set_value("good").run()
    assert not at.exception and not _errors(at)


@pytest.mark.slow
def test_explain_page_run_whose_data_is_gone(tmp_path, own):
    import shutil

    from compare_fixtures import write_run

    from medtl.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    src = next(s for s, k in own.items() if k == "folder").split(":", 1)[1]
    moved = tmp_path / "xr"
    shutil.copytree(src, moved)
    import numpy as np

    cfg = RunConfig(DataConfig(dataset=f"folder:{moved}", image_size=32), ModelConfig(), TrainConfig(epochs=1))
    write_run(RunStore(), cfg, (np.arange(24) % 3 == 0).astype(int), 1.0, 0)
    shutil.rmtree(moved)  # the user moved their data after training
    at = _app(GRADCAM).run()
    assert not at.exception, at.exception
    assert any("cannot be loaded" in e and "does not exist" in e for e in _errors(at)), _errors(at)


@pytest.mark.slow
def test_run_card_shows_the_phase_after_training(tmp_path):
    from medtl.config import DataConfig, RunConfig

    store = RunStore()
    rid = store.create(RunConfig(DataConfig(n_images=120, image_size=32)))
    store.write_status(
        rid,
        state="running",
        pid=os.getpid(),
        progress={"phase": "evaluating on the test split", "final": True, "done": 3, "total": 5},
    )
    at = _app(TRAIN).run()
    assert not at.exception
    texts = [p.proto.text for p in at.get("progress")] if at.get("progress") else []
    assert any("training finished · evaluating on the test split · 3/5" in t for t in texts), texts
    store.write_status(rid, state="failed", error="stopped by the test", pid=None)
    assert json.loads((store.path(rid) / "status.json").read_text())["state"] == "failed"
