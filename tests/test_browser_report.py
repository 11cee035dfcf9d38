"""Real-browser test: a study's report opens from disk in headless Chromium with the network off."""

import pytest
from conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a real browser: seconds to minutes each


def test_report_opens_offline_and_draws_every_figure(browser, tmp_path):
    from test_study import tiny

    from medtl import study
    from medtl.runs import RunStore
    from medtl.similarity import study_similarity
    from medtl.study import report
    from medtl.study.conclusions import summarize

    store = RunStore(tmp_path / "runs")
    s = tiny("offline", cuts=("layer1",))
    study.run_study(s, store)
    out = report.write_report(s, store, tmp_path / "report.html")
    summary = summarize(s, store, n_boot=50)
    n_figures = len(report.figures(s, store, summary, study_similarity(summary, store)))  # feature reuse included

    ctx = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
    requests = []
    ctx.on("request", lambda r: requests.append(r.url))
    page = ctx.new_page()
    page.goto(out.as_uri())
    page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n_figures}")
    assert page.evaluate("() => typeof window.Plotly") == "object"
    assert page.locator(".js-plotly-plot").count() == n_figures >= 4
    assert page.get_by_role("heading", name="Conclusions").is_visible()
    assert [u for u in requests if not u.startswith("file:")] == []
    screenshot(page, "study_report")
    ctx.close()
