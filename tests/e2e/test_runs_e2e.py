"""In a real Chromium: every kind of run reopens from the Runs page on its own page, and two DIP runs are
compared as two curves named after the runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from engine.runs import KIND_LABELS, RunStore
from tests.e2e.helpers import select, wait_idle

pytestmark = pytest.mark.e2e

# kind -> the page's address ("" for the default page, restoration) and the URL parameter naming the run there
PAGES = {"restore": ("", "run"), "mri": ("mri", "run"), "cdi": ("phase-retrieval", "run"),
         "gpr": ("generalized-pr", "run"), "gpr_sweep": ("generalized-pr", "sweep"), "xray": ("xray", "run"),
         "federated": ("federated", "run")}


def _server_runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # the app_url fixture starts the server on a fresh folder under the session's base temp and logs there
    found = [p for p in tmp_path_factory.getbasetemp().glob("e2e-runs*")
             if not p.is_symlink() and (p / "server.log").exists()]  # not pytest's "...current" link
    assert len(found) == 1, f"expected the server's runs folder, found {found}"
    return found[0]


def _finish(store: RunStore, kind: str, params: dict, arrays: dict, label: str, name: str) -> str:
    from engine.jobs.manager import run_inline

    run = store.create({"kind": kind, "params": params}, label=label)
    for key, arr in arrays.items():
        run.save_array(key, arr)
    state, _ = run_inline(run, device="cpu")
    assert state == "done", f"the {kind} run ended {state}: {run.status().get('message')}"
    run.rename(name)
    return run.id


@pytest.fixture(scope="module")
def finished(app_url, tmp_path_factory) -> dict[str, str]:  # noqa: ANN001
    """One tiny finished run of every kind (two of restore), made by the real workflows in the server's folder."""
    from engine.cdi.simulate import simulate_pattern
    from engine.dip.inputs import prepare_inputs as dip_inputs
    from engine.dip.samples import load_sample
    from engine.mri.inputs import builtin_image, image_names
    from engine.mri.workflow import prepare_inputs as mri_inputs
    from tests.federated.synth import make_folder

    store = RunStore(_server_runs_dir(tmp_path_factory))
    made = {}
    img = load_sample("camera", 32)
    for seed, name in enumerate(["DIP alpha", "DIP beta"]):
        arrays, params = dip_inputs(img, {"task": "denoise", "simulate": True, "seed": seed, "preset": "fast-preview",
                                          "max_iters": 30, "window": 5, "patience": 100})
        made[name] = _finish(store, "restore", {**params, "label": "camera"}, arrays, "camera", name)
    arrays, params = mri_inputs({"mask_kind": "random", "acceleration": 4, "noise_sigma": 0.01,
                                 "preset": "fast-preview", "max_iters": 20, "tv_iters": 10, "window": 5,
                                 "patience": 100}, image=builtin_image(image_names()[0], 32))
    made["mri"] = _finish(store, "mri", params, arrays, "mri", "e2e mri")
    sim = simulate_pattern(load_sample("camera", None), shape=(64, 64), oversampling=2.5, photons=1e9,
                           beamstop=1.0, seed=0)
    made["cdi"] = _finish(store, "cdi", {"recipe": "HIO**20", "label": "sim-camera-64", "publish_every": 10},
                          {"intensity": sim.intensity, "mask": sim.mask.astype(np.uint8),
                           "truth": np.asarray(sim.obj, np.complex64)}, "sim-camera-64", "e2e cdi")
    made["gpr"] = _finish(store, "gpr", {"signal": "random", "n": 16, "model": "complex-gaussian", "ratio": 6.0,
                                         "algorithm": "wf", "iters": 50, "seed": 0}, {}, "gpr-wf", "e2e gpr")
    made["gpr_sweep"] = _finish(store, "gpr_sweep", {"n": 8, "ratios": "2,4", "trials": 2, "model": "complex-gaussian",
                                                     "algorithms": ["wf"], "tol": 1e-5, "seed": 0, "iters": 50},
                                {}, "sweep-complex-gaussian", "e2e gpr_sweep")
    film = (np.random.default_rng(0).random((224, 224)) * 255).astype(np.uint8)
    made["xray"] = _finish(store, "xray", {"model": "default", "preset": "Default (header)", "invert": False,
                                           "images": [{"array": "img0", "name": "image 1 (.png)", "header": {}}]},
                           {"img0": film}, "1 chest X-rays", "e2e xray")
    data = make_folder(tmp_path_factory.mktemp("e2e-cxr") / "cxr", per_class=4, size=16)
    made["federated"] = _finish(store, "federated", {"data": str(data), "sites": 2, "rounds": 1, "epochs": 1,
                                                     "norm": "gn", "size": 16, "max_films": 0,
                                                     "regimes": ["centralised", "local"]},
                                {}, "federated", "e2e federated")
    return made


def _pick_run(page, option: str) -> None:  # noqa: ANN001
    """Pick ``option`` in the Runs page's "Run" selectbox, typing to filter (the list may be long)."""
    box = page.locator('[data-testid="stSelectbox"]').filter(
        has=page.get_by_text("Run", exact=True)).first
    box.click()
    page.keyboard.type(option.split(" · ")[0])
    page.get_by_role("option", name=option, exact=True).first.click()
    wait_idle(page)


@pytest.fixture(scope="module")
def tab(browser, app_url, finished):  # noqa: ANN001, ANN201
    """One browser tab for the whole module: pages are switched in one session, as a user does, not reloaded."""
    ctx = browser.new_context(viewport={"width": 1500, "height": 1100})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    pg.goto(f"{app_url}/runs")
    yield pg
    ctx.close()


def _to_runs(page) -> None:  # noqa: ANN001
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Runs").click()
    page.wait_for_url(re.compile(r"/runs$"))
    page.get_by_role("heading", name="Runs").first.wait_for()
    wait_idle(page)


def _open_from_runs(page, name: str, kind: str, rid: str) -> None:  # noqa: ANN001
    _to_runs(page)
    _pick_run(page, f"{name} · {KIND_LABELS[kind]}")
    main = page.locator('[data-testid="stMain"]')
    main.locator('[data-testid="stButton"]').filter(has_text="Open").locator("button").first.click()
    url_path, param = PAGES[kind]
    page.wait_for_url(re.compile(rf"/{url_path}\?{param}={rid}$"), timeout=30_000)
    wait_idle(page)


@pytest.mark.parametrize("kind", list(PAGES))
def test_every_kind_reopens_on_its_page(tab, finished, kind):
    page = tab
    name = "DIP alpha" if kind == "restore" else f"e2e {kind}"
    rid = finished["DIP alpha" if kind == "restore" else kind]
    _open_from_runs(page, name, kind, rid)
    main = page.locator('[data-testid="stMain"]')
    # the run's header (id and state) is on screen, not on a hidden tab, and nothing failed to draw
    shown = main.get_by_text(rid, exact=True)
    shown.first.wait_for(state="visible", timeout=30_000)
    assert main.locator('[data-testid="stException"]').count() == 0
    assert main.get_by_text("done", exact=True).first.is_visible()
    if kind == "gpr_sweep":
        assert page.locator(".js-plotly-plot").filter(has_text="Success rate").first.is_visible()


def test_compare_two_dip_runs_shows_two_named_curves(tab, finished):
    page = tab
    _to_runs(page)
    select(page, "Kind", "Restoration")
    # the two newest restorations are picked by default: the two made above
    page.wait_for_function(
        r"""() => [...document.querySelectorAll('.js-plotly-plot')]
                 .some(g => g.layout && g.layout.title && g.layout.title.text.replace(/<\/?b>/g, '') === 'psnr'
                            && g.data.length === 2)""",
        timeout=30_000)
    names = page.evaluate(
        r"""() => { const g = [...document.querySelectorAll('.js-plotly-plot')]
                     .find(g => g.layout.title && g.layout.title.text.replace(/<\/?b>/g, '') === 'psnr');
                   return g.data.map(t => [t.name, t.x.length]); }""")
    assert sorted(n for n, _ in names) == ["DIP alpha", "DIP beta"]
    assert all(k > 5 for _, k in names)
    legend = page.locator(".js-plotly-plot .legendtext").evaluate_all("els => els.map(e => e.textContent)")
    assert sorted(legend) == ["DIP alpha", "DIP beta"]  # drawn in the legend, not only in the data
