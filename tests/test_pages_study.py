"""The Study page, the queue's stage-2 hook, and ImageNet weights from the dashboard (AppTest)."""

import hashlib
import os
import time
from pathlib import Path

import pytest
import torch
import torchvision
from streamlit.testing.v1 import AppTest
from test_study import tiny

from medtl import study
from medtl.jobs import JobQueue
from medtl.models import weights
from medtl.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
STUDY, TRAIN, COMPARE = (str(ROOT / "pages" / p) for p in ("5_Study.py", "2_Train.py", "3_Compare.py"))


def _app(path: str) -> AppTest:
    return AppTest.from_file(path, default_timeout=240)


def _wait_done(store: RunStore, n: int, timeout: float = 240) -> None:
    end = time.time() + timeout
    while time.time() < end:
        states = [store.status(r).get("state") for r in store.ids()]
        if len(states) >= n and all(s in ("done", "failed", "cancelled") for s in states):
            return
        time.sleep(0.5)
    pytest.fail(f"runs did not finish: {[store.status(r).get('state') for r in store.ids()]}")


def test_empty_compare_offers_the_demo_study_first():
    at = _app(COMPARE).run()
    assert not at.exception
    assert [b.label for b in at.button][:2] == ["Run the demo study", "Quick look (about 1 min)"]


@pytest.mark.slow
def test_study_page_shows_runs_and_a_measured_estimate_before_queueing():
    at = _app(STUDY).run()
    assert not at.exception
    at.selectbox(key="study_start").set_value("quick").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Runs in the study"] == "3" and metrics["To train now"] == "3"
    assert metrics["Estimated time"].endswith("s")  # "1 min 05 s": measured, not a placeholder
    assert any("An estimate" in c.value and "on **cpu**" in c.value for c in at.caption)
    assert at.button(key="study_queue").label == "Queue 3 runs"
    assert not RunStore().ids()  # nothing queued before the click
    at.selectbox(key="s_quick_crit").set_value("val_loss").run()
    at.text_input(key="s_quick_seeds").set_value("0, x").run()
    assert any("Seeds are whole numbers" in e.value for e in at.error)


@pytest.mark.slow
def test_queue_a_tiny_study_and_read_its_conclusions():
    at = _app(STUDY).run()
    at.selectbox(key="study_start").set_value("quick").run()
    k = "s_quick"
    at.text_input(key=f"{k}_name").set_value("tiny").run()
    at.number_input(key=f"{k}_n_images").set_value(160).run()
    at.multiselect(key=f"{k}_cuts").set_value(["layer1"]).run()
    at.number_input(key=f"{k}_epochs").set_value(1).run()
    at.text_input(key=f"{k}_seeds").set_value("0").run()
    assert not at.exception
    assert at.button(key="study_queue").label == "Queue 2 runs"  # layer1 and full fine-tuning
    at.button(key="study_queue").click().run()
    assert not at.exception
    store = RunStore()
    assert study.saved(store) == ["tiny"] and len(store.ids()) == 2
    _wait_done(store, 2)
    at.run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "AUPRC" in text and "AUROC" in text, text  # both metrics, always
    (table,) = [d.value for d in at.dataframe if "selected" in d.value.columns and "rule" not in d.value.columns]
    selected = table["selected"].iloc[0]
    assert selected in ("layer1", "full")
    assert ("DeLong" in text) == (selected == "layer1"), text  # the paired test against full fine-tuning
    # at the operating point chosen on validation, and calibration (issue 21)
    (op,) = [d.value for d in at.dataframe if "rule" in d.value.columns]
    assert op["rule"].iloc[0] == "sensitivity ≥ 90%" and {"Brier", "ECE"} <= set(op.columns)
    assert "At sensitivity ≥ 90% chosen on validation" in text or "operating point not available" in text, text
    assert "Reliability of the selected cut" in text and "Decision curves at" in text
    assert "Test AUPRC (AP) by cut" in text
    assert at.metric[1].value == "0"  # nothing left to train
    assert [b.label for b in at.get("download_button")][-1] == "Download report (HTML)"
    at.toggle(key="study_cka").set_value(True).run()
    assert not at.exception
    assert any(m.value.startswith("**Feature reuse: linear CKA") for m in at.markdown)
    at.text_input(key=f"{k}_seeds").set_value("0, x").run()  # a bad field: nothing to queue, results still shown
    assert not at.exception and any("Seeds are whole numbers" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "study_queue"]
    assert at.selectbox(key="study_pick").value == "tiny" and "Test AUPRC (AP) by cut" in " ".join(
        m.value for m in at.markdown
    )


@pytest.mark.slow
def test_the_queue_itself_queues_stage_2_when_stage_1_finishes(tmp_path):
    store = RunStore(tmp_path / "runs")
    s = tiny("hooked")
    assert study.advance(store, lambda cfg: pytest.fail("a study never started is not queued")) == []
    study.save(s, store)
    q = JobQueue(store, devices="cpu")
    q.on_finished = lambda _run_id: study.advance(store, q.submit)
    try:
        stage1 = study.pending(s, store)
        for cfg in stage1:
            q.submit(cfg)
        assert q.wait(600)  # the hook runs before a run leaves the queue: wait() covers stage 2
    finally:
        q.shutdown()
    (g,) = study.search_state(s, store)
    assert g["stage2"] and g["selected"] is not None
    assert len(store.ids()) == len(stage1) + len(g["stage2"])
    assert study.plan(s, store) == []


def test_advance_does_not_retry_failed_runs(tmp_path):
    store = RunStore(tmp_path / "runs")
    s = tiny("failing", cuts=("layer1",))
    study.save(s, store)
    first, *rest = s.stage1()
    rid = store.create(first)
    store.write_status(rid, state="failed", error="boom")
    submitted = []
    study.advance(store, submitted.append)
    assert [c.key() for c in submitted] == [c.key() for c in rest]  # the rest of a started study, not the failed run


def _fake_weights(tmp_path, monkeypatch) -> tuple[bytes, str]:
    """A state dict whose published name carries its own hash (as tests/test_models.py fakes ImageNet)."""
    torch.manual_seed(0)
    p = tmp_path / "sd.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), p)
    raw = p.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:8]
    monkeypatch.setattr(
        weights.weights_enum("resnet18").value, "url", f"https://example.invalid/m/resnet18-{digest}.pth"
    )
    return raw, f"resnet18-{digest}.pth"


@pytest.mark.slow
def test_train_page_imagenet_weights_upload_is_hash_checked(tmp_path, monkeypatch):
    raw, name = _fake_weights(tmp_path, monkeypatch)
    at = _app(TRAIN).run()
    at.selectbox(key="init").set_value("imagenet").run()
    assert not at.exception
    assert at.button(key="train_w_download").label.startswith("Download weights (44.7 MB")
    assert at.button(key="queue_btn").disabled
    at.get("file_uploader")[0].set_value(("wrong.pth", b"not the weights", "application/octet-stream")).run()
    assert any("not the published resnet18" in e.value for e in at.error)
    assert not weights.weights_status("resnet18")["available"]
    at.get("file_uploader")[0].set_value(("my-download.pth", raw, "application/octet-stream")).run()
    assert not at.exception
    dest = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / name
    assert dest.read_bytes() == raw and weights.weights_status("resnet18")["available"]
    at.run()
    assert not at.button(key="queue_btn").disabled


@pytest.mark.slow
def test_train_page_download_offline_says_where_to_put_the_file(tmp_path, monkeypatch):
    _, name = _fake_weights(tmp_path, monkeypatch)
    at = _app(TRAIN).run()
    at.selectbox(key="init").set_value("imagenet").run()
    at.button(key="train_w_download").click().run()
    assert not at.exception
    (err,) = [e.value for e in at.error if "Download failed" in e.value]
    assert "example.invalid" in err and str(weights.checkpoint_dir()) in err
    assert not weights.cached_file("resnet18").exists()


@pytest.mark.slow
def test_study_page_needing_imagenet_offers_the_weights():
    at = _app(STUDY).run()
    at.selectbox(key="study_start").set_value("quick").run()
    at.multiselect(key="s_quick_init").set_value(["random", "imagenet"]).run()
    assert not at.exception
    assert at.button(key="study_w_resnet18_download").label.startswith("Download weights")
    assert at.button(key="study_queue").disabled


def test_estimate_is_the_work_over_the_measured_speed():
    from medtl import estimate
    from medtl.config import ModelConfig

    speed = estimate.measure(ModelConfig("resnet18", "truncate", "layer1"), 32, 4, steps=1)
    assert speed["train_ips"] > 0 and speed["eval_ips"] > speed["train_ips"] / 10
    s = study.preset("quick")
    counts = {"train": {"n": 280}, "val": {"n": 60}, "test": {"n": 60}}
    out = estimate.estimate(s.stage1(), lambda d: counts, lambda c: {"train_ips": 100.0, "eval_ips": 400.0})
    # two epochs of training and validation, the final validation and test passes, and the per-run overhead
    per_run = [2 * 280 / 100 + (3 * 60 + 60) / 400 + estimate.overhead(c, 60) for c in s.stage1()]
    assert out["runs"] == 3 and out["seconds"] == pytest.approx(sum(per_run))
    assert [m["runs"] for m in out["models"]] == [1, 1, 1]  # three distinct models: layer1, layer2, full
    assert estimate.duration(75) == "1 min 15 s" and estimate.duration(7300) == "2 h 01 min"


@pytest.mark.slow
def test_study_page_suggest_cuts_starts_the_search(tmp_path):
    source = tmp_path / "resnet18.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), source)
    at = _app(STUDY).run()
    at.selectbox(key="study_start").set_value("quick").run()
    k = "s_quick"
    at.number_input(key=f"{k}_n_images").set_value(200).run()
    at.number_input(key=f"{k}_image_size").set_value(32).run()
    assert not any(b.key == f"{k}_adv_resnet18_suggest" for b in at.button)  # a list of cuts: nothing to start
    at.selectbox(key=f"{k}_cm").set_value("search").run()
    assert any("Add a pretrained initialisation" in c.value for c in at.caption)
    for bad, says in (("run:nope", "No run nope in"), ("/no/such.pt", "Initialisation file /no/such.pt does not")):
        at.text_input(key=f"{k}_source").set_value(bad).run()
        assert not at.exception and any(says in e.value for e in at.error), [e.value for e in at.error]
        assert not [b for b in at.button if b.key == "study_queue"]  # nothing to queue with a missing source
    at.text_input(key=f"{k}_source").set_value(f"file:{source}").run()
    assert not at.exception
    before = at.button(key="study_queue").label
    at.button(key=f"{k}_adv_resnet18_suggest").click().run()
    assert not at.exception, at.exception
    (table,) = [d.value for d in at.dataframe if "LogME" in d.value.columns]
    assert set(table["cut"]) == {"stem", "layer1", "layer2", "layer3", "full"}  # layer4 is the full ResNet18
    at.number_input(key=f"{k}_adv_resnet18_top").set_value(2).run()
    at.button(key=f"{k}_adv_resnet18_take").click().run()
    assert not at.exception
    top = list(table["cut"].iloc[:2])
    (msg,) = [s.value for s in at.success if "Stage 1" in s.value]
    assert f"resnet18: {', '.join(sorted(top, key=['stem', 'layer1', 'layer2', 'layer3', 'full'].index))}" in msg
    # random: 4 blocks + full; the source: the advisor's picks + full
    n = 5 + len({*top, "full"})
    assert at.button(key="study_queue").label == f"Queue {n} runs" != before
    at.button(key=f"{k}_start_clear").click().run()
    assert at.button(key="study_queue").label == before and not [s for s in at.success if "Stage 1" in s.value]
