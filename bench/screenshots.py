"""Take the README's screenshots of the real app in headless Chromium (Playwright).

Usage: ``python bench/screenshots.py`` (writes assets/screenshots/*.png).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.e2e.helpers import fill_number, select, wait_idle  # noqa: E402
from tests.e2e.server import free_port, running_app, streamlit_command  # noqa: E402

OUT = ROOT / "assets" / "screenshots"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    runs = Path(tempfile.mkdtemp(prefix="shots-"))
    env = dict(os.environ, INVERSE_STUDIO_RUNS=str(runs))
    url = f"http://127.0.0.1:{port}"
    with running_app(streamlit_command(port), port=port, log_path=runs / "server.log", env=env,
                     timeout=90), sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1500, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.get_by_text("Restoration with the Deep Image Prior").wait_for()
        select(page, "Size", "128")
        page.get_by_text("Advanced").click()
        fill_number(page, "Iteration budget", 400)
        page.get_by_role("button", name="Run").click()
        page.wait_for_timeout(8000)
        page.screenshot(path=str(OUT / "restoration-live.png"))
        page.get_by_text("Output at t*").wait_for(timeout=600_000)
        wait_idle(page)
        page.screenshot(path=str(OUT / "restoration-result.png"), full_page=True)
        page.goto(f"{url}/xray")
        page.get_by_text("Try a sample").first.click()
        page.wait_for_timeout(6000)
        wait_idle(page)
        page.screenshot(path=str(OUT / "xray-review.png"), full_page=True)
        page.goto(f"{url}/phase-retrieval")
        page.wait_for_timeout(6000)
        page.screenshot(path=str(OUT / "phase-retrieval.png"))
        page.goto(f"{url}/symmetry")
        page.get_by_text("without restriction (error").first.wait_for()
        wait_idle(page)
        page.screenshot(path=str(OUT / "symmetry.png"), full_page=True)
        page.goto(f"{url}/runs")  # the restoration run above is listed, named and comparable
        page.wait_for_timeout(4000)
        wait_idle(page)
        page.screenshot(path=str(OUT / "runs.png"), full_page=True)
        b.close()


if __name__ == "__main__":
    main()
