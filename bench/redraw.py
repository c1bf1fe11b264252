"""Live-panel redraw rate and the solver slowdown a watching browser causes, in the real app.

For each page (restoration, MRI) the same fixed-work run (a 64 px input, a fixed iteration budget,
no early stop on the restoration page) is made twice per repeat, in alternating order:

* without a watcher: Run is pressed, then the tab goes to ``about:blank`` at once (the session, and
  with it the live panel, ends), and the run folder's ``status.json`` is polled until the run ends;
* with a watcher: the page stays open and, inside the browser, the iteration number in the run
  header ("iteration N · ...") is read from the DOM every 50 ms.

Reported per run: its wall time (``finished - started`` in status.json; the solver loop's own
``wall_seconds`` from summary.json beside it), the redraw rate (changes of the iteration number
shown, per second while the run was going: the mean over 1 s bins, and the median and slowest bin),
the CPU seconds of the server (solver included) and of the browser, and ``os.getloadavg()`` before
and after; per page: slowdown = wall_with / wall_without - 1 (medians of the repeats). The machine
may be shared: the load averages say how busy it was.

Both ways the app can run its jobs are measured, one server each, in the same run: in a child
process per lane (``INVERSE_STUDIO_ISOLATION=process``, the default) and in the server's own threads
(``thread``, where the solver shares the GIL with the redraws).

Usage: ``python bench/redraw.py [--pages restoration mri] [--repeats 3] [--iters 400]
[--isolation process thread]`` (writes bench/results/redraw_cpu.json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from engine.core.machine import machine_info  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.e2e.helpers import fill_number, select  # noqa: E402
from tests.e2e.server import free_port, running_app, streamlit_command  # noqa: E402

OUT = ROOT / "bench" / "results" / "redraw_cpu.json"
TERMINAL = ("done", "failed", "cancelled", "interrupted")
# the run header reads "running · iteration N · 12 s · run `id`"; image captions ("…, iteration N") lack the dot
SAMPLER_JS = r"""() => {
    window.__iters = [];
    const re = /\biteration (\d+) ·/;
    window.__sampler = setInterval(() => {
        const main = document.querySelector('[data-testid="stMain"]');
        const m = main && re.exec(main.textContent || '');
        window.__iters.push([Date.now() / 1000, m ? Number(m[1]) : null]);
    }, 50);
}"""


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``, its ended threads included."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    f = text[text.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _parents() -> dict[int, int]:
    """Process id -> parent id, for every process now running."""
    parents: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                text = (p / "stat").read_text()
                parents[int(p.name)] = int(text[text.rindex(")") + 2:].split()[1])
            except OSError:
                continue
    return parents


def _under(pid: int, root: int, parents: dict[int, int]) -> bool:
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        if pid == root:
            return True
        seen.add(pid)
        pid = parents.get(pid, 0)
    return False


def _tree_cpu_s(root: int) -> float:
    """CPU seconds used so far by ``root`` and its live descendants (the server and its job processes)."""
    parents = _parents()
    return sum(_cpu_s(pid) for pid in parents if _under(pid, root, parents))


def _browser_cpu_s() -> float:
    """CPU seconds used so far by the Chromium processes this script started (the watcher's cost)."""
    parents = _parents()
    total = 0.0
    for pid in parents:
        if pid != os.getpid() and _under(pid, os.getpid(), parents):
            try:
                if b"chromium" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    total += _cpu_s(pid)
            except OSError:
                continue
    return total


def _select(page: Any, label: str, option: str, tries: int = 3) -> None:
    """:func:`select`, tried again when the list did not open (a page busy with its first load)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for i in range(tries):
        try:
            select(page, label, option)
            return
        except PlaywrightTimeout:
            if i == tries - 1:
                raise
            page.keyboard.press("Escape")


def setup_restoration(page: Any, url: str, iters: int) -> Any:
    """Open the restoration page on a 64 px sample, no early stop, ``iters`` iterations; return its Run button."""
    page.goto(url)
    page.get_by_text("Restoration with the Deep Image Prior").wait_for()
    _select(page, "Size", "64")
    page.get_by_text("Advanced").click()
    _select(page, "Early stopping", "none")
    fill_number(page, "Iteration budget", iters)
    return page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Run")


def setup_mri(page: Any, url: str, iters: int) -> Any:
    """Open the MRI page on the 64 px phantom with a DIP budget of ``iters``; return its Run button."""
    page.goto(f"{url}/mri")
    page.get_by_text("Mask (white = measured)").first.wait_for(timeout=60_000)
    _select(page, "Size", "64")
    fill_number(page, "DIP budget (0 = default)", iters)
    return page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Run")


SETUP = {"restoration": setup_restoration, "mri": setup_mri}


def _status(runs: Path, rid: str) -> dict:
    try:
        return json.loads((runs / rid / "status.json").read_text())
    except (OSError, ValueError):  # being replaced this very moment
        return {}


def _wait_end(runs: Path, rid: str, timeout: float) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = _status(runs, rid)
        if st.get("state") in TERMINAL:
            return st
        time.sleep(0.25)
    raise TimeoutError(f"run {rid} did not end within {timeout:.0f} s")


def redraw_rate(samples: list[list], t0: float, t1: float) -> dict:
    """Redraws per second in [t0, t1): new iteration numbers shown per 1 s bin (mean, median, slowest)."""
    shown = [(t, v) for t, v in samples if v is not None and t0 <= t < t1]
    if not shown:
        return {"per_s_mean": 0.0, "per_s_median": 0.0, "per_s_min": 0, "bins": 0, "redraws": 0}
    start = shown[0][0]
    n_bins = max(1, int((t1 - start) // 1.0))
    counts = [0] * n_bins
    prev = shown[0][1]
    for t, v in shown[1:]:
        k = int((t - start) // 1.0)
        if v != prev and k < n_bins:
            counts[k] += 1
        prev = v
    return {"per_s_mean": round(statistics.fmean(counts), 2), "per_s_median": statistics.median(counts),
            "per_s_min": min(counts), "bins": n_bins, "redraws": sum(counts)}


def one_run(browser: Any, url: str, runs: Path, page_name: str, iters: int, watch: bool, server_pid: int) -> dict:
    """One fixed-work run of ``page_name``, watched or not; its wall time (and redraw rate when watched)."""
    ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    try:
        run_button = SETUP[page_name](page, url, iters)
        load_before = _load()
        cpu0 = (_tree_cpu_s(server_pid), _browser_cpu_s())
        if watch:
            page.evaluate(SAMPLER_JS)
        run_button.click()
        page.wait_for_url(re.compile(r"[?&]run="), timeout=60_000)
        rid = re.search(r"[?&]run=([^&]+)", page.url).group(1)
        if not watch:
            page.goto("about:blank")  # the session, and its live panel, end here
        st = _wait_end(runs, rid, timeout=900)
        cpu1 = (_tree_cpu_s(server_pid), _browser_cpu_s())
        samples = page.evaluate("() => window.__iters") if watch else []
    finally:
        ctx.close()
    summary = json.loads((runs / rid / "summary.json").read_text()) if (runs / rid / "summary.json").exists() else {}
    started, finished = float(st.get("started") or 0), float(st.get("finished") or st.get("updated") or 0)
    rec = {"page": page_name, "watcher": watch, "run": rid, "state": st.get("state"),
           "iterations": st.get("iteration"), "wall_s": round(finished - started, 2),
           "loop_wall_s": summary.get("wall_seconds"), "load_before": load_before, "load_after": _load(),
           # the server's CPU includes its job processes' (the solver's); the browser's is the watching tab's
           "server_cpu_s": round(cpu1[0] - cpu0[0], 2), "browser_cpu_s": round(cpu1[1] - cpu0[1], 2)}
    if watch:
        rec["redraws"] = redraw_rate(samples, started, finished)
    return rec


def summarise(records: list[dict]) -> list[dict]:
    """Per isolation and page: median walls with and without a watcher, the slowdown and the redraw rate."""
    out = []
    for iso, name in dict.fromkeys((r.get("isolation", "thread"), r["page"]) for r in records):
        mine = [r for r in records
                if r["page"] == name and r.get("isolation", "thread") == iso and r["state"] == "done"]
        w = [r["wall_s"] for r in mine if r["watcher"]]
        wo = [r["wall_s"] for r in mine if not r["watcher"]]
        rates = [r["redraws"]["per_s_mean"] for r in mine if r["watcher"]]
        if not (w and wo):
            continue
        mw, mwo = statistics.median(w), statistics.median(wo)
        browser = [r["browser_cpu_s"] / r["wall_s"] for r in mine if r["watcher"] and r["wall_s"] > 0]
        loads = [r["load_before"][0] for r in mine] + [r["load_after"][0] for r in mine]
        out.append({"isolation": iso, "page": name, "redraws_per_s": round(statistics.median(rates), 2),
                    "redraws_per_s_each": rates, "wall_without_s": mwo, "wall_with_s": mw,
                    "walls_without": wo, "walls_with": w, "slowdown": round(mw / mwo - 1, 3),
                    "browser_cores": round(statistics.median(browser), 2) if browser else None,
                    "load1_min": min(loads), "load1_max": max(loads)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", nargs="+", default=["restoration", "mri"], choices=list(SETUP))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iters", type=int, default=400, help="iteration budget of every run")
    ap.add_argument("--isolation", nargs="+", default=["process", "thread"], choices=["process", "thread"],
                    help="where the app runs its jobs ($INVERSE_STUDIO_ISOLATION): one server per value, in turn")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    records: list[dict] = []
    for isolation in args.isolation:
        runs = Path(tempfile.mkdtemp(prefix="redraw-runs-"))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, INVERSE_STUDIO_RUNS=str(runs), INVERSE_STUDIO_ISOLATION=isolation)
        with running_app(streamlit_command(port), port=port, log_path=runs / "server.log", env=env,
                         timeout=90) as proc, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            # a first run warms the server (imports, the job process) so the timed ones start alike
            for name in args.pages:
                one_run(browser, url, runs, name, 20, watch=False, server_pid=proc.pid)
            for name in args.pages:
                for rep in range(args.repeats):
                    order = (False, True) if rep % 2 == 0 else (True, False)
                    for watch in order:
                        rec = one_run(browser, url, runs, name, args.iters, watch, server_pid=proc.pid)
                        rec["isolation"] = isolation
                        records.append(rec)
                        print(json.dumps(rec), flush=True)
            browser.close()
    result = {"what": "live-panel redraws per second and solver slowdown with a watching browser",
              "iters": args.iters, "size": 64, "repeats": args.repeats, "cpus": os.cpu_count(),
              "machine": machine_info(), "threads": os.environ.get("INVERSE_STUDIO_THREADS", "1"),
              "isolations": args.isolation,
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "summary": summarise(records), "runs": records}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
