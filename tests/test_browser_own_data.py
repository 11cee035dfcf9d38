"""Real-browser test (issue 19): a user's own data — a MedMNIST-format file, a folder of PNG, JPEG and DICOM
files and a CSV manifest, all written here — through Train, Study (the two-stage search, no target given),
Compare, Explain and the report, with no exception on any page."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from conftest import choose, fill, screenshot
from conftest import idle as _idle
from data_fixtures import make_own_data

from medtl.runs import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KIND_LABEL = {
    "medmnist": ("MedMNIST .npz file", "MedMNIST file"),
    "folder": ("Image folder (one sub-folder per class)", "Image folder"),
    "csv": ("CSV manifest (path,label)", "CSV manifest"),
}
FINISHED = ("done", "failed", "cancelled")


def _wait_runs(store: RunStore, n: int, timeout: float = 600, settle: bool = False) -> None:
    """Until at least ``n`` runs exist and all have finished (``settle``: and no new one came for 3 s)."""
    end, calm = time.time() + timeout, None
    while time.time() < end:
        states = [store.status(r).get("state") for r in store.ids()]
        if len(states) >= n and all(s in FINISHED for s in states):
            assert set(states) == {"done"}, [(r, store.status(r).get("error")) for r in store.ids()]
            if not settle:
                return
            calm = calm or (time.time(), len(states))
            if calm[1] != len(states):
                calm = (time.time(), len(states))
            elif time.time() - calm[0] > 3:
                return
        else:
            calm = None
        time.sleep(0.5)
    pytest.fail(f"runs did not finish: {[store.status(r).get('state') for r in store.ids()]}")


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    assert not page.get_by_text("This app has encountered an error").count()


def test_own_data_through_train_study_compare_explain_and_the_report(server, page, tmp_path):
    specs = make_own_data(tmp_path / "own")
    store = RunStore(server["runs"])
    for spec, kind in specs.items():
        path = spec.split(":", 1)[1]
        kind_label, path_label = KIND_LABEL[kind]
        # Train: the default target is chosen and said, the split counts shown
        page.goto(server["url"] + "/Train")
        page.get_by_role("heading", name="Train", exact=True).wait_for()
        choose(page, "ds_kind", kind_label)
        fill(page, path_label, path)
        fill(page, "Image size (px)", "32")
        page.get_by_text(re.compile(r"train \d+ \(\d+ positive")).first.wait_for()
        fill(page, "Epochs", "1")
        _idle(page)
        _no_exception(page)
        if kind == "medmnist":  # one run from the Train page (the others train in their studies)
            page.locator(".st-key-queue_btn button").click()
            _idle(page)
        # Study: the search from a preset, on this data, without naming the target (queued while the
        # previous study still trains: the queue takes them in turn)
        page.goto(server["url"] + "/Study")
        page.get_by_role("heading", name="Study", exact=True).wait_for()
        _idle(page)
        if not page.locator(".st-key-study_start").is_visible():  # saved studies: the form is folded
            page.get_by_text("New study").click()
        choose(page, "study_start", "quick")
        fill(page, "Study name", f"own-{kind}")
        choose(page, "s_quick_ds_kind", kind_label)
        fill(page, path_label, path)
        choose(page, "s_quick_cm", "search (two stages)")
        fill(page, "Epochs per run", "1")
        _idle(page)
        _no_exception(page)
        page.locator(".st-key-study_queue button").click()
        # the page opens the study just queued (the page showed the last one before)
        page.wait_for_function(
            f"document.querySelector('.st-key-study_pick input')?.value === 'own-{kind}'", timeout=120_000
        )
    _wait_runs(store, 1 + 3 * 6, settle=True)  # every stage 1, then stage 2 queued by the queue itself
    page.reload()  # a fresh session opens the most recent study
    for kind in ("csv", "folder", "medmnist"):
        if kind != "csv":
            choose(page, "study_pick", f"own-{kind}")
        page.get_by_text(re.compile(r"(\d+) of \1 runs done")).wait_for(timeout=120_000)
        page.get_by_role("heading", name="Conclusions").wait_for(timeout=120_000)
        _idle(page)
        assert page.locator(".st-key-study_pick input").first.input_value() == f"own-{kind}"
        _no_exception(page)
        screenshot(page, f"own_data_study_{kind}")
    # every run of every dataset trained: nothing failed
    states = {store.status(r)["state"] for r in store.ids()}
    assert states == {"done"} and len({store.config(r).data.dataset for r in store.ids()}) == 3
    # the report of the last study: conclusions and every run's config, offline
    _idle(page)
    with page.expect_download(timeout=300_000) as dl:
        page.get_by_role("button", name="Download report (HTML)").click()
    html = Path(dl.value.path()).read_text(encoding="utf-8")
    assert "<h2>Conclusions</h2>" in html and "nodulemnist.npz" in html
    # Compare: all three datasets' runs
    page.goto(server["url"] + "/Compare")
    page.get_by_role("heading", name="Compare runs").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_text(re.compile(rf"Download shown runs \(CSV, {len(store.ids())} rows\)")).wait_for()
    _no_exception(page)
    screenshot(page, "own_data_compare")
    # Explain: the newest run's dataset, maps drawn
    page.goto(server["url"] + "/Grad-CAM")
    page.get_by_role("heading", name=re.compile("Explain|Grad-CAM")).first.wait_for()
    page.locator("[data-testid='stImage']").first.wait_for(timeout=300_000)
    _idle(page)
    _no_exception(page)
    screenshot(page, "own_data_explain")
