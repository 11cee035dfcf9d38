"""Real-browser test: headless Debian Chromium opens the ROC-vs-PRC page and moves a control."""

import re

import pytest
from conftest import screenshot

pytestmark = pytest.mark.browser


def _legend_text(page) -> str:
    return " ".join(page.locator(".js-plotly-plot .legendtext").evaluate_all("els => els.map(e => e.textContent)"))


def test_home_and_roc_page_update(server, page):
    page.goto(server["url"])
    page.get_by_role("heading", name="MedTL Studio").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    screenshot(page, "home")
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name=re.compile("Home")).wait_for()  # not the entry file's name, "app"
    assert not nav.get_by_role("link", name=re.compile(r"^\W*app$")).count()

    nav.get_by_role("link", name=re.compile("ROC vs PRC")).click()  # the sidebar leads to the page's URL
    page.wait_for_url(re.compile("/ROC_vs_PRC$"))
    page.get_by_role("heading", name=re.compile("ROC vs precision")).wait_for()
    page.locator(".js-plotly-plot .legendtext", has_text="A (top 12)").first.wait_for()
    before = _legend_text(page)
    assert "B (top 30)" in before

    box = page.get_by_label("B: positives within top k")
    box.fill("60")
    box.press("Enter")
    # every chart redraws with the new k (they update one after another)
    page.wait_for_function(
        "() => { const t = [...document.querySelectorAll('.js-plotly-plot .legendtext')].map(e => e.textContent).join(' ');"
        " return t.includes('B (top 60)') && !t.includes('B (top 30)'); }"
    )
    after = _legend_text(page)
    assert after != before
    screenshot(page, "roc_vs_prc")

    box.fill("3")
    box.press("Enter")
    page.get_by_text("classifier B: k must lie between").wait_for()
