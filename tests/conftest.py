"""Shared fixtures: offline environment, a live Streamlit server, a headless Chromium page."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

# The suite runs as two processes on two cores (`pytest -n 2`): one compute thread each, inherited by
# the processes the tests start (training children, the Streamlit server). Two threads per process on
# two busy cores spin against each other (a DenseNet forward went from 0.09 s to 4 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# tests edit finished runs by hand and read them back at once (a page re-checks finished runs every 10 s)
os.environ.setdefault("MEDTL_RECHECK_S", "0")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Every test gets its own TORCH_HOME, runs folder and data cache: nothing shared, nothing fetched."""
    base = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("TORCH_HOME", str(base / "torch"))
    monkeypatch.setenv("MEDTL_RUNS", str(base / "runs"))
    monkeypatch.setenv("MEDTL_CACHE", str(base / "cache"))
    monkeypatch.setenv("MEDTL_OFFLINE", "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``streamlit run app.py`` on 127.0.0.1 and a free port; yields the base URL."""
    base = tmp_path_factory.mktemp("server")
    port = _free_port()
    env = {
        **os.environ,
        "TORCH_HOME": str(base / "torch"),
        "MEDTL_RUNS": str(base / "runs"),
        "MEDTL_CACHE": str(base / "cache"),
        "MEDTL_OFFLINE": "1",
    }
    log = open(base / "streamlit.log", "w")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not become healthy; log: {(base / 'streamlit.log').read_text()[-2000:]}")
    yield {"url": url, "runs": base / "runs", "log": base / "streamlit.log"}
    proc.terminate()
    try:
        proc.wait(30)  # on a busy machine a training worker can take seconds to stop
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    log.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()


ARTIFACTS = ROOT / "tests" / "_artifacts"


def screenshot(pg, name: str) -> Path:
    """Save a full-page screenshot under tests/_artifacts (git-ignored) for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path


def fill(pg, label: str, value: str) -> None:
    """Type into the Streamlit input labelled ``label`` and commit it (Enter)."""
    box = pg.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    idle(pg)


def idle(pg, timeout: float = 30_000) -> None:
    """Until the app has finished the rerun a change started (on a loaded machine a rerun takes seconds:
    typing into the next field before it ends can lose the value)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    pg.wait_for_timeout(500)
    # a page that polls (a run training) may never be idle for long: then go on after the timeout
    with contextlib.suppress(PlaywrightTimeout):
        pg.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')", timeout=timeout)


def choose(pg, key: str, option: str, many: bool = False) -> None:
    """Pick ``option`` in the Streamlit selectbox (or multiselect, ``many``) with widget key ``key``."""
    pg.locator(f".st-key-{key} input").first.click()
    pg.get_by_role("option", name=option, exact=many).first.click()
    if many:
        pg.keyboard.press("Escape")
    idle(pg)
