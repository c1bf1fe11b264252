"""In a real Chromium: the Federated page draws each round's per-site AUC live and ends with the results table."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import fill_number, select, wait_idle
from tests.e2e.helpers import plot_points as _plot_points

# the page's default data folder: ../shared/data from the project's root
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "cxr-pneumonia" / "train"

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not ((DATA / "NORMAL").is_dir() and (DATA / "PNEUMONIA").is_dir()),
                                 reason=f"the chest X-ray folder {DATA} is absent (see ../shared/data/README.md)")]

ROUNDS = 15
FEDAVG_TITLE = "AUC per site: fedavg-bn"
RESULTS = "Results (final round, test films of each site)"
ROUND_TEXT = re.compile(r"Series \d+: \S+ · round \d+")


def _round_text(page) -> str | None:  # noqa: ANN001
    """The live panel's "Series N: label · round R" line (None before the first round)."""
    loc = page.locator('[data-testid="stMain"]').get_by_text(ROUND_TEXT)
    try:
        return loc.first.inner_text(timeout=500) if loc.count() else None
    except Exception:  # redrawn by the live fragment between count() and inner_text()
        return None


def _table(page) -> list[dict[str, str]]:  # noqa: ANN001
    """The first st.dataframe's rows as {column: text}.

    It draws on a canvas; its cells are also in an accessible table inside it.
    """
    return page.evaluate(
        r"""() => {
            const t = document.querySelector('[data-testid="stDataFrame"] table[role="grid"]');
            if (!t) return [];
            const cols = [...t.querySelectorAll('thead th')].map(h => h.textContent);
            return [...t.querySelectorAll('tbody tr')].map(
                tr => Object.fromEntries([...tr.querySelectorAll('td')].map((td, i) => [cols[i], td.textContent])));
        }""")


def test_federated_auc_curve_grows_live_and_results_table_is_shown(page, app_url):
    page.goto(f"{app_url}/federated")
    page.get_by_text("Pick the sites and rounds").first.wait_for(timeout=60_000)
    # the smallest run the page allows: 2 sites, one norm, 32 px, 400 films; 15 rounds, as a FedAvg round
    # of so few films takes under a second and the live panel redraws once a second
    fill_number(page, "Sites", 2)
    fill_number(page, "Rounds", ROUNDS)
    fill_number(page, "Films (subset, 0 = all)", 400)
    select(page, "Normalisation", "bn")
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Film size (px)").get_by_role("slider")
    thumb.focus()
    thumb.press("Home")  # 64 -> 32, the first option
    wait_idle(page)
    assert thumb.get_attribute("aria-valuetext") == "32", "the film size did not change to 32 px"
    page.wait_for_timeout(500)
    page.locator('[data-testid="stMain"]').get_by_role("button", name="Run", exact=True).click()

    counts: list[int] = []
    texts: list[str] = []
    deadline = time.time() + 100
    while time.time() < deadline:
        n = _plot_points(page, FEDAVG_TITLE)
        if n and (not counts or n != counts[-1]):
            counts.append(n)
        t = _round_text(page)
        if t and (not texts or t != texts[-1]):
            texts.append(t)
        if page.get_by_text(RESULTS, exact=True).count():
            break
        page.wait_for_timeout(150)
    assert len(counts) >= 2 and counts == sorted(counts) and counts[-1] == ROUNDS, \
        f"the FedAvg AUC curve did not grow live: {counts} (round lines {texts})"
    assert len([t for t in texts if "fedavg-bn" in t]) >= 2, f"the round counter did not move during FedAvg: {texts}"

    page.get_by_text(RESULTS, exact=True).wait_for(timeout=60_000)
    page.locator('[data-testid="stDataFrame"] td[role="gridcell"]').first.wait_for(state="attached")
    rows = {r["label"]: r for r in _table(page)}
    assert set(rows) == {"fedavg-bn", "centralised-bn", "local-bn"}, f"results table: {list(rows.values())}"
    for label, r in rows.items():
        aucs = [float(r[k]) for k in ("auc_site0", "auc_site1", "auc_pooled")]
        assert all(0.0 <= a <= 1.0 for a in aucs), f"{label}: an AUC outside [0, 1]: {r}"
    page.get_by_text("AUC per site: local-bn").first.wait_for()
