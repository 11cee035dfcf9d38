"""AppTest of the Train form (issue 22): dataset-kind options of every type come from their records, and a
form run is the run the command line makes from the same settings."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from medtl import config, datasets
from medtl.fields import between, setting
from medtl.runs import RunStore
from ui import data_form, forms

pytestmark = pytest.mark.slow  # every test here takes seconds (the fast subset: -m "not slow")

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "pages" / "2_Train.py")

# A throwaway kind: the CSV manifest with options of the types no real kind has yet (text, an optional
# path, an optional number). Its loader ignores them; the test follows their values into the run.
TEXT_OPTIONS = (
    datasets.Option("label_column", "label", "Label column", "CSV+: the column holding the labels", hint="label"),
    datasets.Option("mask_folder", None, "Mask folder", "CSV+: masks by image name", type=str | None, hint="<folder>"),
    datasets.Option("max_images", None, "At most", "CSV+: images kept", between(20), type=int | None),
)


@pytest.fixture
def text_kind(monkeypatch):
    """Register ``csvx`` (the CSV kind with :data:`TEXT_OPTIONS`) and a DataConfig with their fields (a real
    kind's option is a DataConfig field too: test_config checks the two match). Returns that DataConfig."""
    config.RunConfig()  # RunConfig's field types are resolved (and cached) with the real DataConfig first
    fields = [(o.name, o.annotation, setting(o.default)) for o in TEXT_OPTIONS]
    data_config = dataclasses.make_dataclass("DataConfig", fields, bases=(config.DataConfig,), frozen=True)
    kind = dataclasses.replace(datasets.KINDS["csv"], name="csvx", label="CSV+ (test)", options=TEXT_OPTIONS)
    monkeypatch.setitem(datasets.KINDS, "csvx", kind)
    monkeypatch.setitem(config._NESTED, ("RunConfig", "data"), data_config)  # config.json read back
    for module in (config, data_form, forms):  # imported above: each one's own DataConfig is the real one
        monkeypatch.setattr(module, "DataConfig", data_config)
    return data_config


def _cancel(at: AppTest, store: RunStore, rid: str) -> str:
    """Cancel the queued run from its card (the test needs its config, not its training); its last state."""
    at.run()
    at.button(key=f"cancel_{rid}").click().run()
    end = time.time() + 60
    while store.status(rid).get("state") not in ("done", "failed", "cancelled") and time.time() < end:
        time.sleep(0.1)
    return store.status(rid)["state"]


@pytest.mark.slow
def test_a_text_option_is_a_text_box_and_its_value_reaches_the_queued_run(text_kind, tmp_path, monkeypatch):
    from data_fixtures import make_own_data

    monkeypatch.setenv("MEDTL_RUNS", str(tmp_path / "runs"))
    manifest = next(s for s, k in make_own_data(tmp_path / "own", n=120).items() if k == "csv").partition(":")[2]
    at = AppTest.from_file(TRAIN, default_timeout=240).run()
    at.selectbox(key="ds_kind").set_value("csvx").run()
    at.text_input(key="ds_path").set_value(manifest).run()
    assert not at.exception, at.exception
    # each option's widget from its record: text boxes for text (empty for an optional one), a number box
    # for a number that may stay empty
    assert at.text_input(key="label_column").value == "label" and at.text_input(key="mask_folder").value == ""
    assert (
        at.text_input(key="mask_folder").placeholder == "<folder>" and at.number_input(key="max_images").value is None
    )
    at.text_input(key="label_column").set_value("grade").run()
    at.text_input(key="mask_folder").set_value("  /data/masks ").run()
    at.number_input(key="max_images").set_value(5).run()
    assert [e.value for e in at.error] == ["max\\_images must be at least 20. Got 5"]  # the record's rule
    at.number_input(key="max_images").set_value(100).run()
    for key, value in (("image_size", 32), ("epochs", 1), ("batch_size", 16)):
        at.number_input(key=key).set_value(value).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button(key="queue_btn").click().run()
    store = RunStore(tmp_path / "runs")
    (rid,) = store.ids()
    queued = json.loads((store.path(rid) / "config.json").read_text())["data"]
    want = text_kind(
        dataset=f"csvx:{manifest}", image_size=32, label_column="grade", mask_folder="/data/masks", max_images=100
    )
    assert queued == want.to_dict() and queued["label_column"] == "grade"
    assert store.config(rid).data == want  # read back as the worker reads it
    assert _cancel(at, store, rid) == "cancelled"


@pytest.mark.slow
def test_a_form_run_is_the_run_the_cli_makes_from_the_same_settings(tmp_path, monkeypatch):
    """The Train form and ``python -m medtl train`` with the equivalent flags queue one config (one key)."""
    from medtl.cli.runs import run_config_from_args, train_configure

    monkeypatch.setenv("MEDTL_RUNS", str(tmp_path / "runs"))
    settings = {
        "n_images": ("number_input", 120, "--n-images"),
        "prevalence": ("number_input", 0.3, "--prevalence"),
        "difficulty": ("number_input", 0.2, "--difficulty"),
        "image_size": ("number_input", 32, "--image-size"),
        "train_size": ("text_input", "50%", "--train-size"),
        "strategy": ("selectbox", "freeze", "--strategy"),
        "cut": ("selectbox", "layer1", "--cut"),
        "epochs": ("number_input", 1, "--epochs"),
        "batch_size": ("number_input", 16, "--batch-size"),
        "lr": ("number_input", 0.002, "--lr"),
        "seeds": ("text_input", "3", "--seed"),
    }
    at = AppTest.from_file(TRAIN, default_timeout=240).run()
    for key, (widget, value, _) in settings.items():
        getattr(at, widget)(key=key).set_value(value).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button(key="queue_btn").click().run()
    store = RunStore(tmp_path / "runs")
    (rid,) = store.ids()
    p = argparse.ArgumentParser()
    train_configure(p)
    cli = run_config_from_args(p.parse_args([a for _, v, flag in settings.values() for a in (flag, str(v))]))
    form = store.config(rid)
    assert form == cli and form.key() == cli.key()
    assert (form.data.n_images, form.data.train_size, form.model.cut, form.train.seed) == (120, 0.5, "layer1", 3)
    assert _cancel(at, store, rid) == "cancelled"
