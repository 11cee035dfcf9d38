"""Screenshots of every page at 1280 and 1920 px in a real headless Chromium, for a person to look at.

    python scripts/screenshots.py [--runs DIR] [--out tests/_artifacts/screens] [--pages Train,Compare]

Starts ``streamlit run app.py`` on 127.0.0.1 and a free port (the runs folder from ``--runs`` or
``$MEDTL_RUNS``), waits for each page to render, and writes ``<page>_<width>.png``. The output
folder is git-ignored. Needs Debian's chromium (``apt-get install -y chromium``) and playwright.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ui.nav import PAGES  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(runs: str | None, port: int) -> subprocess.Popen:
    env = {**os.environ, **({"MEDTL_RUNS": runs} if runs else {})}
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not become healthy in 60 s")


# the script has stopped running and no spinner is left (a long first computation)
IDLE = (
    "!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')"
    " && !document.querySelector('[data-testid=\"stSpinner\"]')"
)


def wait_idle(page, quiet_s: int = 2) -> None:
    """Wait until the page has been idle for ``quiet_s`` checks a second apart: a page opened by URL
    runs more than once (the app's navigation, then the page), with short idle gaps in between."""
    quiet = 0
    while quiet < quiet_s:
        page.wait_for_function(IDLE, timeout=180_000)
        page.wait_for_timeout(1000)
        quiet = quiet + 1 if page.evaluate(IDLE) else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", help="runs folder (default: $MEDTL_RUNS or ./runs)")
    ap.add_argument("--out", default=str(ROOT / "tests" / "_artifacts" / "screens"))
    ap.add_argument("--pages", help="comma-separated page titles (default: all, with Home)")
    ap.add_argument("--widths", default="1280,1920")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    urls = {"Home": ""} | {page.title: "/" + Path(p).stem.split("_", 1)[1] for p, page in PAGES.items()}
    wanted = a.pages.split(",") if a.pages else list(urls)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = serve(a.runs, port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for width in map(int, a.widths.split(",")):
                ctx = browser.new_context(viewport={"width": width, "height": 1000})
                page = ctx.new_page()
                page.set_default_timeout(120_000)
                for title in wanted:
                    page.goto(f"http://127.0.0.1:{port}{urls[title]}")
                    page.locator("[data-testid='stMain']").wait_for()
                    page.wait_for_timeout(1500)
                    wait_idle(page)
                    # the app scrolls inside its main container: grow the window to its height for a whole-page picture
                    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
                    page.set_viewport_size({"width": width, "height": min(max(height, 800), 12000)})
                    page.wait_for_timeout(1500)
                    path = out / f"{title.replace(' ', '_')}_{width}.png"
                    page.screenshot(path=str(path), full_page=True)
                    page.set_viewport_size({"width": width, "height": 1000})
                    print(path)
                ctx.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
