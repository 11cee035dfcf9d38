"""Real-browser test: from the empty Compare page, the quick study runs to its conclusions and its report downloads."""

from pathlib import Path

import pytest
from conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a real browser: seconds to minutes each


def test_quick_study_from_the_empty_compare_page_to_its_report(server, page):
    page.goto(server["url"] + "/Compare")
    page.get_by_role("button", name="Run the demo study").wait_for()  # the first action of the empty page
    page.get_by_role("button", name="Quick look (about 1 min)").click()
    page.wait_for_url("**/Study")
    # the page follows the runs by itself (no reload) until the conclusions are complete
    done = page.get_by_text("3 of 3 runs done")
    done.wait_for(timeout=900_000)
    conclusion = page.locator("[data-testid='stMarkdownContainer'] li").filter(has_text="full fine-tuning").first
    conclusion.wait_for(timeout=120_000)
    text = conclusion.inner_text()
    assert "AUPRC" in text and "AUROC" in text
    page.locator(".js-plotly-plot").first.wait_for()
    screenshot(page, "study_page_quick")
    # the page's last full run (when the study finished) is over before the click
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')")
    page.wait_for_timeout(1000)
    with page.expect_download(timeout=300_000) as dl:
        page.get_by_role("button", name="Download report (HTML)").click()
    html = Path(dl.value.path()).read_text(encoding="utf-8")
    assert dl.value.suggested_filename == "study_quick.html"
    assert "<h2>Conclusions</h2>" in html and text.split(":")[0] in html
    assert "plotly" in html.lower() and "medtl-summary" in html


def test_suggest_cuts_starts_a_search_from_the_advisors_blocks(server, page, tmp_path):
    import torch
    import torchvision
    from conftest import choose, fill

    source = tmp_path / "resnet18.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), source)
    page.goto(server["url"] + "/Study")
    start = page.locator(".st-key-study_start input").first
    start.wait_for(state="attached")
    if not start.is_visible():  # a saved study folds the form away
        page.get_by_text("New study").click()
    choose(page, "study_start", "quick")
    choose(page, "s_quick_cm", "search (two stages)")
    fill(page, "Pretrained source (optional)", "/no/such/file.pt")
    page.get_by_text("Initialisation file /no/such/file.pt does not exist").wait_for()
    fill(page, "Pretrained source (optional)", str(source))
    page.get_by_role("button", name="Suggest cuts").click()
    page.get_by_role("button", name="Use the top 3 cuts").click(timeout=120_000)
    message = page.get_by_text("Stage 1 of the pretrained groups starts from resnet18:")
    message.wait_for()
    assert "and the full network" in message.inner_text()
    screenshot(page, "study_page_advisor")
    page.get_by_role("button", name="Search every block instead").click()
    message.wait_for(state="detached")
