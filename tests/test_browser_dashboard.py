"""Real-browser test of the key flow: queue a 2-cut x 2-init sweep on SynthCXR from the Train page,
watch it progress, cancel one run, let the rest finish, then open Compare and Explain (Grad-CAM)."""

import time

import pytest
import torch
import torchvision
from conftest import choose, fill, screenshot

from medtl.runs import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a real browser: seconds to minutes each


def test_sweep_watch_cancel_compare(server, page, tmp_path):
    sd_path = tmp_path / "resnet18_random.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), sd_path)

    page.goto(server["url"] + "/Train")
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    page.get_by_text("Sweep: several cuts").click()
    fill(page, "Images", "160")
    fill(page, "Image size (px)", "32")
    fill(page, "Epochs", "3")
    fill(page, "Batch size", "16")
    choose(page, "inits", "file: a state dict", many=True)
    fill(page, "State dict file", str(sd_path))
    queue = page.get_by_role("button", name="Queue 4 runs")
    queue.wait_for()
    screenshot(page, "train")
    queue.click()

    store = RunStore(server["runs"])
    end = time.time() + 60
    while len(store.ids()) < 4 and time.time() < end:
        time.sleep(0.2)
    ids = store.ids()
    assert len(ids) == 4
    page.get_by_text("running").first.wait_for()
    page.locator("[data-testid='stProgress']").first.wait_for()  # live progress bar
    last = ids[-1]
    page.locator(f".st-key-cancel_{last} button").click()

    end = time.time() + 600  # a loaded CI machine trains slowly
    while time.time() < end and any(store.status(r)["state"] in ("queued", "running") for r in ids):
        time.sleep(0.5)
    states = [store.status(r)["state"] for r in ids]
    assert states == ["done", "done", "done", "cancelled"], states
    page.get_by_text("cancelled").first.wait_for()
    screenshot(page, "train_queue")

    page.goto(server["url"] + "/Compare")
    page.get_by_role("heading", name="Compare runs").wait_for()
    page.get_by_role("heading", name="Metric vs truncation depth").wait_for()
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=60_000)
    legends = " ".join(page.locator(".js-plotly-plot .legendtext").evaluate_all("els => els.map(e => e.textContent)"))
    assert "random · 100%" in legends and "file:" in legends  # one truncation line per initialisation
    screenshot(page, "compare")

    page.goto(server["url"] + "/Grad-CAM")  # the Explain page keeps its URL
    page.get_by_role("heading", name="Explain", exact=True).wait_for()
    page.locator(".st-key-layer [data-testid='stSelectbox']").wait_for()  # the layer choice
    page.locator("[data-testid='stImage']").first.wait_for(timeout=90_000)
    screenshot(page, "gradcam")
