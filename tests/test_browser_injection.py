"""Real-browser test (issue 20): text is data. A CSV manifest whose positive label is Markdown for an image
pointing at a local URL is trained on; the Train, Compare and Explain pages show the label as plain text — no
element carries that URL and the browser never requests it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import choose, fill, idle, screenshot
from data_fixtures import gradient
from PIL import Image

from medtl.cli import main

pytestmark = [pytest.mark.browser, pytest.mark.slow]

URL = "http://127.0.0.1:9/px.png"
LABEL = f"![px]({URL})"
SHOWN = "![px](http:"  # the label as text (an invisible word joiner follows the colon: no autolink)


def _manifest(root: Path) -> Path:
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(60):
        Image.fromarray(gradient(bright=i % 3 == 0)).save(root / "img" / f"{i}.png")
        split = ["train", "train", "train", "val", "test"][i % 5]
        rows.append({"path": f"img/{i}.png", "label": LABEL if i % 3 == 0 else "normal", "split": split})
    f = root / "manifest.csv"
    with open(f, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "label", "split"])
        w.writeheader()
        w.writerows(rows)
    return f


def _no_trace_of_the_url(page) -> None:
    bad = page.locator("[src*='127.0.0.1:9'], [href*='127.0.0.1:9'], [srcset*='127.0.0.1:9']")
    assert bad.count() == 0, [
        bad.nth(i).evaluate("e => e.parentElement.outerHTML.slice(0, 400)") for i in range(bad.count())
    ]
    assert page.locator("[data-testid='stException']").count() == 0


def test_a_markdown_label_is_shown_as_text_and_never_fetched(server, page, tmp_path):
    manifest = _manifest(tmp_path / "own")
    requested: list[str] = []
    elsewhere: list[str] = []  # anything but the app's own server (a favicon from a font CDN was one)
    page.on("request", lambda r: requested.append(r.url) if "127.0.0.1:9/" in r.url else None)
    page.on(
        "request", lambda r: None if r.url.startswith((server["url"], "data:", "blob:")) else elsewhere.append(r.url)
    )
    # the target named: it is part of the runs' names, legends and the Explain page's captions
    common = ["--dataset", f"csv:{manifest}", "--finding", LABEL, "--image-size", "32", "--epochs", "1"]
    common += ["--batch-size", "16"]
    for cut in ("layer1", "layer2"):
        args = ["train", *common, "--cut", cut, "--init", "random", "--runs-dir", str(server["runs"])]
        assert main(args) == 0
    # Train: the dataset summary names the positive class, the queue lists the runs
    page.goto(server["url"] + "/Train")
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    choose(page, "ds_kind", "CSV manifest (path,label)")
    fill(page, "CSV manifest", str(manifest))
    page.get_by_text(SHOWN).first.wait_for()  # the label itself, as typed in the CSV
    idle(page)
    _no_trace_of_the_url(page)
    screenshot(page, "injection_train")
    # Compare: run names and legends carry the target
    page.goto(server["url"] + "/Compare")
    page.get_by_role("heading", name="Compare runs").wait_for()
    page.get_by_text("ROC and precision–recall on the test split").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()  # the curves drawn, legends with the runs' names
    idle(page)
    _no_trace_of_the_url(page)
    screenshot(page, "injection_compare")
    # Explain: the runs' names and the class in the captions
    page.goto(server["url"] + "/Grad-CAM")
    page.get_by_role("heading", name="Explain").first.wait_for()
    idle(page, 120_000)
    screenshot(page, "injection_explain")
    page.get_by_text(SHOWN).first.wait_for(timeout=120_000)
    _no_trace_of_the_url(page)
    screenshot(page, "injection_explain")
    assert requested == []
    assert elsewhere == []
