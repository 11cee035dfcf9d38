"""Real-browser tests for issue 12: the app's navigation on a page URL, and truncation-figure
points that are means over true repeats only (two datasets, two learning rates, seeds)."""

import re

import pytest
from compare_fixtures import mixed_runs
from conftest import screenshot

from medtl.runs import RunStore

pytestmark = pytest.mark.browser


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
