"""Real-browser tests: headless Debian Chromium opens the ROC-vs-PRC page and moves its controls."""

import re

import pytest
from conftest import fill, idle, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a real browser: seconds to minutes each


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

    box = page.get_by_label("Top k of classifier B", exact=True)
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
    page.get_by_text("Top k of classifier B: must lie between the number of positives (10)").wait_for()


def _at_threshold(page, n: int) -> None:
    page.get_by_role("heading", name=f"At the threshold: top {n} predicted positive").wait_for()


def _slider_max(page, n: int) -> None:
    """Wait until the threshold slider runs from 1 to ``n`` (the page has rerun with the new data) and is the only
    one (while a rerun draws, Streamlit can show the new slider beside the stale one for a moment)."""
    page.wait_for_function(
        "() => { const s = document.querySelectorAll('.st-key-threshold input[type=range]');"
        f" return s.length === 1 && s[0].getAttribute('max') === '{n}'; }}"
    )


def test_roc_threshold_survives_new_negatives_and_reset_restores_it(server, page):
    page.goto(server["url"] + "/ROC_vs_PRC")
    _at_threshold(page, 12)
    slider = page.locator(".st-key-threshold input[type=range]")
    slider.focus()
    for _ in range(28):
        slider.press("ArrowRight")
    _at_threshold(page, 40)
    assert slider.input_value() == "40"

    fill(page, "Negatives", "500")  # a new range for the slider (1..510): Streamlit would make a new one at 12
    _slider_max(page, 510)
    _at_threshold(page, 40)
    assert slider.input_value() == "40"
    assert page.get_by_text("Over 200 draws").count()

    fill(page, "Negatives", "20")  # 30 images: the threshold no longer fits
    page.get_by_text("The threshold was the top 40, more than the 30 images there are now: it is set to 30.").wait_for()
    _at_threshold(page, 30)
    screenshot(page, "roc_threshold_clamped")

    page.get_by_role("button", name="Reset", exact=True).click()
    _at_threshold(page, 12)
    _slider_max(page, 1000)
    idle(page)  # on a loaded machine the rerun's stale slider can stand beside the new one for a moment
    assert page.get_by_label("Negatives", exact=True).input_value() == "990"
    assert slider.input_value() == "12"
    assert not page.get_by_text("The threshold was").count()
