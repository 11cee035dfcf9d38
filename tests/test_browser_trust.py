"""Real-browser tests for issue 12: the app's navigation on a page URL, and truncation-figure
points that are means over true repeats only (two datasets, two learning rates, seeds)."""

import re

import pytest
from compare_fixtures import mixed_runs
from conftest import choose, fill, idle, screenshot

from medtl.runs import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a real browser: seconds to minutes each


def test_page_url_first_keeps_the_app_navigation(server, page):
    """A fresh server whose first visitor opens /Compare still shows the app's sidebar (Home, ...)."""
    page.goto(server["url"] + "/Compare")
    page.get_by_role("heading", name="Compare runs").wait_for()
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name=re.compile("Home")).wait_for()
    assert not nav.get_by_role("link", name=re.compile(r"^\W*app$")).count()


def test_truncation_points_are_means_over_true_repeats(server, page):
    runs = mixed_runs(RunStore(server["runs"]))
    page.goto(server["url"] + "/Compare")
    page.get_by_role("heading", name="Metric vs truncation depth").wait_for()
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=60_000)
    fig = page.evaluate(
        """() => { const el = [...document.querySelectorAll('.js-plotly-plot')]
             .find(e => (e.layout.xaxis.title.text || '').startsWith('cut point'));
           return {data: el._fullData.map(t => ({name: t.name, mode: t.mode, y: Array.from(t.y), text: t.text})),
                   range: el.layout.yaxis.range}; }"""
    )
    counts = sorted(t for tr in fig["data"] if tr["mode"] == "text" for t in tr["text"])
    assert counts == sorted(f"n={len(ids)}" for ids in runs.values())  # one point per experiment
    names = [tr["name"] for tr in fig["data"] if tr["mode"] == "lines+markers"]
    assert len(names) == 3 and any("lr=1" in n for n in names) and any("medmnist" in n for n in names)
    store = RunStore(server["runs"])
    layer2 = [store.metrics(i)["test"]["auroc"] for i in runs["synth layer2"]]
    means = [y for tr in fig["data"] if tr["mode"] == "lines+markers" for y in tr["y"]]
    assert any(abs(m - sum(layer2) / 3) < 1e-9 for m in means)  # the 3 repeats, and only them
    assert fig["range"][0] >= 0 and fig["range"][1] <= 1.01
    screenshot(page, "compare_repeats")


def _queue_button(page):
    return page.locator(".st-key-queue_btn button")


def test_out_of_range_learning_rate_blocks_queueing(server, page):
    page.goto(server["url"] + "/Train")
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    _queue_button(page).get_by_text("Queue 1 run").wait_for()
    fill(page, "Learning rate", "100")
    page.get_by_text("lr must be in (0, 1]. Got 100.0").wait_for()  # next to the control, not only on hover
    assert _queue_button(page).is_disabled()
    screenshot(page, "train_lr_out_of_range")
    fill(page, "Learning rate", "0.01")
    page.wait_for_function("!document.querySelector('.st-key-queue_btn button').disabled")


def test_folder_with_an_empty_test_split_is_refused_before_a_run_exists(server, page, tmp_path):
    from data_fixtures import make_class_folders

    root = make_class_folders(tmp_path / "six", n=3)  # 6 images: the test split gets none
    before = RunStore(server["runs"]).ids()
    page.goto(server["url"] + "/Train")
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    choose(page, "ds_kind", "Image folder (one sub-folder per class)")
    fill(page, "Image folder", str(root))
    page.get_by_text(re.compile(r"The test split of folder:.* is empty")).wait_for(timeout=60_000)
    assert _queue_button(page).is_disabled()
    assert RunStore(server["runs"]).ids() == before  # nothing was recorded
    screenshot(page, "train_empty_test_split")


def test_a_config_already_done_is_flagged(server, page):
    runs = mixed_runs(RunStore(server["runs"]))
    done = runs["synth layer1"][0]  # SynthCXR, 200 images, 32 px, layer1, 3 epochs, lr 0.001, seed 0
    page.goto(server["url"] + "/Train")
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    fill(page, "Images", "200")
    fill(page, "Image size (px)", "32")
    choose(page, "cut", "layer1")
    fill(page, "Epochs", "3")
    page.get_by_text(re.compile("already done or queued")).wait_for()
    page.get_by_text(done).first.wait_for()
    assert _queue_button(page).is_disabled()
    fill(page, "Seeds", "0, 7")  # a repeat is another seed, never a copy
    _queue_button(page).get_by_text("Queue 1 run").wait_for()
    assert not _queue_button(page).is_disabled()
    screenshot(page, "train_duplicate_flagged")


def test_the_train_form_keeps_its_values_when_another_page_is_visited(server, page):
    """Streamlit drops a widget's state when its page is not drawn; the form keeps what was typed."""
    page.goto(server["url"] + "/Train")
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    for label, value in (("Image size (px)", "48"), ("Epochs", "7"), ("Seeds", "0, 1")):
        for _ in range(3):  # on a loaded machine a rerun can swallow a value typed during it: type it again
            fill(page, label, value)
            if page.get_by_label(label, exact=True).input_value() == value:
                break
        assert page.get_by_label(label, exact=True).input_value() == value
    idle(page)
    page.get_by_role("link", name="Compare").first.click()
    page.get_by_role("heading", name="Compare runs").wait_for()
    page.get_by_role("link", name="Train").first.click()
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    page.wait_for_timeout(1500)
    assert page.get_by_label("Image size (px)", exact=True).input_value() == "48"
    assert page.get_by_label("Epochs", exact=True).input_value() == "7"
    assert page.get_by_label("Seeds", exact=True).input_value() == "0, 1"
