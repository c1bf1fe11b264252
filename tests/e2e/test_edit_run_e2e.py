"""In a real Chromium: a finished restoration reopened from the Runs page, "Edit as a new run" fills the
sidebar with its settings and closes it, and Run starts a new run with them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.runs import RunStore
from tests.e2e.helpers import fill_number, select, wait_idle

pytestmark = pytest.mark.e2e


def _server_runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # the app_url fixture starts the server on a fresh folder under the session's base temp and logs there
    found = [p for p in tmp_path_factory.getbasetemp().glob("e2e-runs*")
             if not p.is_symlink() and (p / "server.log").exists()]
    assert len(found) == 1, f"expected the server's runs folder, found {found}"
    return found[0]


def _url_run(page) -> str | None:  # noqa: ANN001
    m = re.search(r"[?&]run=([^&]+)", page.url)
    return m.group(1) if m else None


def _wait_done(page) -> str:  # noqa: ANN001
    """Wait until the run in the URL has ended and shows its results; its id."""
    page.wait_for_url(re.compile(r"[?&]run="), timeout=30_000)
    page.get_by_text("Metrics CSV").wait_for(timeout=180_000)  # the downloads come with the results
    wait_idle(page)
    rid = _url_run(page)
    assert rid
    return rid


def _sidebar(page):  # noqa: ANN001, ANN202
    return page.locator('[data-testid="stSidebar"]')


def _selected(page, label: str) -> str:  # noqa: ANN001
    box = _sidebar(page).locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    return box.get_by_role("combobox").input_value()


def test_edit_a_reopened_restoration_as_a_new_run(page, app_url, tmp_path_factory):
    store = RunStore(_server_runs_dir(tmp_path_factory))
    page.goto(app_url)
    page.get_by_text("Restoration with the Deep Image Prior").wait_for()
    wait_idle(page)
    select(page, "Size", "64")
    select(page, "Preset", "fast-preview")
    _sidebar(page).get_by_text("Advanced").click()
    fill_number(page, "Iteration budget", 30)
    fill_number(page, "Window W", 5)
    fill_number(page, "Seed", 3)
    _sidebar(page).get_by_role("button", name="Run", exact=True).click()
    first = _wait_done(page)
    assert store.get(first).spec["params"]["size"] == 64

    # back to the page's defaults, then reopen the run from the Runs page
    page.goto(app_url)
    page.get_by_text("Restoration with the Deep Image Prior").wait_for()
    wait_idle(page)
    assert _selected(page, "Size") == "256"
    page.goto(f"{app_url}/runs")
    page.get_by_role("heading", name="Runs").first.wait_for()
    wait_idle(page)
    main = page.locator('[data-testid="stMain"]')
    main.locator('[data-testid="stButton"]').filter(has_text="Open").locator("button").first.click()
    page.wait_for_url(re.compile(rf"\?run={first}$"))
    wait_idle(page)
    main.get_by_role("button", name="Edit as a new run").click()
    wait_idle(page)

    # the run is closed and its settings are in the sidebar, the ones in "Advanced" too
    page.wait_for_url(re.compile(r"/restoration$|:\d+/$"))
    assert main.get_by_text(f"The settings of run {first} are filled in").count() == 1
    assert main.get_by_role("button", name="Edit as a new run").count() == 0
    assert _selected(page, "Size") == "64" and _selected(page, "Preset") == "fast-preview"
    assert page.get_by_label("Iteration budget", exact=True).input_value() == "30"
    assert page.get_by_label("Window W", exact=True).input_value() == "5"
    assert page.get_by_label("Seed", exact=True).input_value() == "3"

    run = _sidebar(page).get_by_role("button", name="Run", exact=True)
    assert run.is_enabled()
    run.click()
    second = _wait_done(page)
    assert second != first
    p1, p2 = store.get(first).spec["params"], store.get(second).spec["params"]
    same = ("sample", "size", "preset", "max_iters", "window", "patience", "seed", "corrupt", "severity", "task")
    assert {k: p2.get(k) for k in same} == {k: p1.get(k) for k in same}
    assert p2["size"] == 64 and p2["max_iters"] == 30 and p2["seed"] == 3
