"""AppTest smoke tests for app.py and pages/1_ROC_vs_PRC.py."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
ROC_PAGE = str(ROOT / "pages" / "1_ROC_vs_PRC.py")


def test_home_renders():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    assert at.title[0].value == "MedTL Studio"
    assert any("System status" in e.label for e in at.expander)
    headers = [h.value for h in at.subheader]
    assert {"SynthCXR: the embedded dataset", "Runs", "ImageNet weights"} <= set(headers)
    weights = at.dataframe[0].value
    assert list(weights["backbone"])[:2] == ["resnet18", "resnet50"]
    assert set(weights["weights"]) == {"✗ not downloaded", "none exist for this backbone"}  # offline, nothing cached
    assert len(at.get("image")) == 1  # the SynthCXR gallery


def test_roc_page_defaults():
    at = AppTest.from_file(ROC_PAGE, default_timeout=60).run()
    assert not at.exception and not at.error
    summary = at.dataframe[1].value
    assert summary.iloc[0, 0].startswith("0.99")  # A's AUROC mean


@pytest.mark.parametrize(
    "key, value",
    [("n_pos", 11), ("n_neg", 500), ("k_a", 25), ("k_b", 60), ("draws", 30), ("seed", 7)],
)
def test_roc_page_every_number_input(key, value):
    at = AppTest.from_file(ROC_PAGE, default_timeout=60).run()
    at.number_input(key=key).set_value(value).run()
    assert not at.exception and not at.error


def test_roc_page_slider_and_toggle():
    at = AppTest.from_file(ROC_PAGE, default_timeout=60).run()
    at.slider(key="cut").set_value(30).run()
    conf = at.dataframe[0].value
    assert list(conf["TP"]) == [10, 10]  # at the top 30 both classifiers have found every positive
    assert conf.loc["B", "FP"] == 20
    at.toggle(key="bands").set_value(False).run()
    assert not at.exception


@pytest.mark.parametrize(
    "key, value, message",
    [("k_a", 3, "k must lie between"), ("n_neg", 0, "negatives"), ("k_b", 5000, "k must lie between")],
)
def test_roc_page_bad_input_message(key, value, message):
    at = AppTest.from_file(ROC_PAGE, default_timeout=60).run()
    at.number_input(key=key).set_value(value).run()
    assert not at.exception
    assert message in at.error[0].value
