"""AppTest of the Run buttons: off while the page's run is queued or running, no duplicate from a second
click, and a queued run shows its place in line and can be taken out of the queue."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.jobs.registry import WORKFLOWS

SCREENS = Path(__file__).resolve().parents[2] / "ui" / "screens"


def slow_run(ctx) -> dict:  # noqa: ANN001
    """Stands in for every workflow here: one step every 20 ms until it is stopped (a minute at most)."""
    for it in range(1, 3001):
        ctx.check()
        time.sleep(0.02)
        ctx.publish(it, {"loss": 1.0 / it})
    return {}


@pytest.fixture(autouse=True)
def slow_workflows(monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in ("restore", "mri", "cdi", "gpr", "gpr_sweep", "federated"):
        monkeypatch.setitem(WORKFLOWS, kind, "tests.ui.test_run_guard:slow_run")


def _federated_data(at: AppTest, tmp_path: Path) -> None:
    from tests.federated.synth import make_folder

    at.text_input(key="fl_data").set_value(str(make_folder(tmp_path / "cxr", per_class=4, size=16)))


# page file, kind, Run button key, URL parameter, set-up before Run
PAGES = [
    ("restoration.py", "restore", "run", "run", lambda at, tmp: at.selectbox(key="size").set_value(64)),
    ("mri.py", "mri", "mri_run", "run", lambda at, tmp: at.selectbox(key="mri_size").set_value(32)),
    ("phase_retrieval.py", "cdi", "run", "run", None),
    ("generalized_pr.py", "gpr", "gpr_run", "run", lambda at, tmp: at.select_slider(key="gpr_size").set_value(8)),
    ("generalized_pr.py", "gpr_sweep", "sw_run", "sweep", lambda at, tmp: at.number_input(key="sw_n").set_value(8)),
    ("federated.py", "federated", "fl_run", "run", _federated_data),
]


def _open(page: str, tmp_path: Path, prepare) -> AppTest:  # noqa: ANN001
    at = AppTest.from_file(str(SCREENS / page), default_timeout=60).run()
    assert not at.exception
    if prepare is not None:
        prepare(at, tmp_path)
        at.run()
    assert not at.exception
    return at


def _qp(at: AppTest, name: str) -> str | None:
    v = at.query_params.get(name)
    return (v[0] if isinstance(v, list) else v) or None


def _runs_of(kind: str) -> list[str]:
    from ui.jobs import manager

    return [r.id for r in manager().store.list() if r.kind == kind]


def _stop(rid: str) -> None:
    from ui.jobs import manager

    manager().cancel(rid)
    assert manager().wait(rid, 30) == "cancelled"


@pytest.mark.parametrize(("page", "kind", "key", "param", "prepare"), PAGES, ids=[p[1] for p in PAGES])
def test_run_is_off_while_the_run_is_active(page, kind, key, param, prepare, tmp_path):
    at = _open(page, tmp_path, prepare)
    assert not at.button(key=key).disabled
    at.button(key=key).click().run()
    assert not at.exception
    rid = _qp(at, param)
    assert rid is not None and _runs_of(kind) == [rid]
    button = at.button(key=key)
    assert button.disabled
    assert f"A run is in progress: run {rid} is" in button.help and "before starting another" in button.help
    # a second click made on the button before the browser drew it disabled, sent with the URL from before
    # the first click: it queues nothing and the page shows the first run
    at.query_params.pop(param, None)
    second = at.button(key=key)
    second._value = True  # what the browser sends for that click (AppTest refuses to click a disabled button)
    at.run()
    assert not at.exception
    assert _runs_of(kind) == [rid]
    assert _qp(at, param) == rid and at.button(key=key).disabled
    _stop(rid)
    at.run()
    assert not at.exception
    assert not at.button(key=key).disabled  # ended: Run is back


def test_a_queued_run_shows_its_place_and_leaves_the_queue_on_cancel(tmp_path):
    from ui.jobs import manager

    mgr = manager()
    first = mgr.submit({"kind": "restore", "params": {"label": "first"}}, label="first")
    second = mgr.submit({"kind": "mri", "params": {}}, label="second")
    deadline = time.time() + 10
    while mgr.snapshot(first)["state"] != "running" and time.time() < deadline:
        time.sleep(0.02)
    try:
        at = _open("restoration.py", tmp_path, lambda at, tmp: at.selectbox(key="size").set_value(64))
        at.button(key="run").click().run()
        assert not at.exception
        rid = _qp(at, "run")
        assert mgr.snapshot(rid)["state"] == "queued"
        notes = [i.value for i in at.info if "in line" in i.value]
        assert len(notes) == 1, [i.value for i in at.info]
        note = notes[0]
        assert re.match(r"\*\*queued · 2nd in line\*\* on \S+: waiting for ", note), note
        # what is ahead, in order, as links to the pages that show them
        assert note.index(f"[`{first}`](restoration?run={first})") < note.index(f"[`{second}`](mri?run={second})")
        assert "restore, running, iteration" in note and "mri, queued" in note
        assert not at.get("plotly_chart")  # no empty curves while it waits
        assert at.button(key="run").disabled

        at.button(key=f"cancel-{rid}").click().run()
        assert not at.exception
        assert at.markdown and any("**cancelled**" in m.value for m in at.markdown)
        assert not at.button(key="run").disabled
        assert not any("in line" in i.value for i in at.info)
        assert any("taken out of the queue before it started" in i.value for i in at.info)
    finally:
        mgr.cancel(second)
        _stop(first)
    assert mgr.wait(rid, 30) == "cancelled"
    assert mgr.wait(second, 30) == "cancelled"
    assert mgr.store.get(rid).metrics() == []  # it never ran


def test_ordinals():
    from ui.widgets import ordinal

    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]


def test_time_left_comes_from_the_recent_pace():
    from ui.jobs import _seconds_left

    # a slow start (set-up), then 10 steps a second: the set-up does not count
    rows = [{"iteration": 1, "t": 0.0}] + [{"iteration": i, "t": 60.0 + (i - 2) / 10} for i in range(2, 52)]
    snap = {"iteration": 51, "history": rows}
    assert _seconds_left(snap, 1051) == pytest.approx(100.0)
    assert _seconds_left(snap, None) is None and _seconds_left(snap, 51) is None
    assert _seconds_left({"iteration": 3, "history": rows[:3]}, 1000) is None  # too few steps to tell
