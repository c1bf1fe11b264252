"""Every reader refuses every file of the bad-input corpus cleanly.

For each case (:mod:`tests.reliability.corpus`): a library reader raises ``InputError`` with a one-line
message; a CLI command exits with status 2 and prints one line, ``inverse-studio CMD: error: ...``, and no
traceback (``xray predict`` exits 1 with one error row per bad file, by design); nothing is left in the
output folder, in the temporary folder or in the error-log folder; no pickled payload runs; and the case
needs less than :data:`PEAK_LIMIT_MB` above the warmed-up process (its memory high-water mark, reset in
each child). The cases run in children forked from one process (:mod:`tests.reliability.runner`),
started once for the selected cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.corpus import CONTROL, CONTROL_MB, cases

ROOT = Path(__file__).resolve().parents[2]
PEAK_LIMIT_MB = 400
CASES = cases()
FAMILIES = ("image", "mask", "diffraction", "dicom", "kspace", "checkpoint", "runfolder")
pytestmark = pytest.mark.timeout(900)  # the first test runs the whole corpus (about a minute on 2 cores)


def _param(case):  # noqa: ANN001, ANN202
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="session")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Run the selected cases once (children of one warmed-up process) and return their results by id."""
    wanted = sorted({item.callspec.params["case"].id for item in request.session.items
                     if hasattr(item, "callspec") and "case" in item.callspec.params
                     and item.module.__name__ == __name__})
    work = tmp_path_factory.mktemp("corpus")
    ids = work / "cases.json"
    ids.write_text(json.dumps(wanted))
    out = work / "results.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("INVERSE_STUDIO_RUNS", None)
    proc = subprocess.run([sys.executable, "-m", "tests.reliability.runner", "--work", str(work / "cases"),
                           "--results", str(out), "--cases", str(ids), "--jobs", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"the corpus runner failed:\n{proc.stderr[-3000:]}"
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return {r["id"]: r for r in rows}


def problems(case, res: dict) -> list[str]:  # noqa: ANN001
    """What is wrong with how ``case`` ended (empty: it was refused cleanly)."""
    bad: list[str] = []
    outcome = res.get("outcome")
    out, err = res.get("stdout", ""), res.get("stderr", "")
    if outcome in ("died", "runner-error", None):
        return [f"{outcome}: {res.get('message') or res.get('traceback', '')[-800:]}"]
    if outcome == "crash":
        bad.append(f"raised {res['error']} instead of InputError: {res['message'][:300]}")
    if outcome == "accepted" and case.expect != "tolerated":
        bad.append("the reader accepted it; expected InputError")
    if outcome == "InputError":
        msg = res["message"]
        if "\n" in msg.strip() or not msg.strip():
            bad.append(f"the message is not one line: {msg!r}")
    err_lines = [ln for ln in err.splitlines() if ln.strip()]
    if "Traceback" in out + err:
        bad.append(f"a traceback was printed: {(out + err)[-600:]}")
    if res.get("kind") == "cli":
        rc = res.get("rc")
        cmd = res["argv"][0]  # messages name the subcommand: "inverse-studio xray: error: ..."
        if case.expect == "refused":
            if rc != 2:
                bad.append(f"exit status {rc}, expected 2; stderr: {err[-400:]!r}")
            if len(err_lines) != 1 or not err_lines[0].startswith(f"inverse-studio {cmd}: error: "):
                bad.append(f"stderr is not one 'inverse-studio {cmd}: error: ...' line: {err[-600:]!r}")
        elif case.expect == "row":
            rows = [ln for ln in out.splitlines() if ln.strip()]
            if rc != 1:
                bad.append(f"exit status {rc}, expected 1 (one error row); stderr: {err[-400:]!r}")
            try:
                row = json.loads(rows[0]) if len(rows) == 1 else {}
            except ValueError:
                row = {}
            if not isinstance(row.get("error"), str) or "\n" in row["error"] or not row["error"].strip():
                bad.append(f"stdout is not one JSON row with a one-line error: {out[-600:]!r}")
            if err_lines:
                bad.append(f"stderr should be empty: {err[-400:]!r}")
        elif case.expect == "tolerated":
            if rc not in (0, 2) or len(err_lines) > 1:
                bad.append(f"exit status {rc} (expected 0 or 2) with stderr {err[-400:]!r}")
        if res.get("out_left") or res.get("out_is_file"):
            bad.append(f"left in the output folder: {res.get('out_left')}")
    elif err_lines:
        bad.append(f"the reader printed on stderr: {err[-400:]!r}")
    if res.get("tmp_left"):
        bad.append(f"left in the temporary folder: {res['tmp_left']}")
    if res.get("logs_left"):
        bad.append(f"an error log was written (an unexpected exception): {res['logs_left']}")
    if res.get("executed"):
        bad.append("a pickled payload was executed")
    if res.get("watch_changed") and not (case.expect == "tolerated" and outcome == "accepted"):
        bad.append(f"the run folder was changed: {res['watch_changed']}")
    peak_mb = (res.get("peak_kb", 0) - res.get("base_kb", 0)) / 1024
    if peak_mb >= PEAK_LIMIT_MB:
        bad.append(f"peak memory {peak_mb:.0f} MB above the process; the limit is {PEAK_LIMIT_MB} MB")
    return bad


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_is_refused_cleanly(case, results: dict[str, dict]) -> None:  # noqa: ANN001
    res = results.get(case.id)
    assert res is not None, f"{case.id}: the runner gave no result"
    bad = problems(case, res)
    assert not bad, f"{case.id} ({res.get('seconds')} s):\n  " + "\n  ".join(bad)


def test_peak_memory_is_measured(results: dict[str, dict]) -> None:
    """The control case allocates 256 MiB in its child: the peak must show it (else no limit is checked)."""
    res = results[CONTROL.id]
    assert res["outcome"] == "InputError", res
    peak_mb = (res["peak_kb"] - res["base_kb"]) / 1024
    assert CONTROL_MB * 0.95 <= peak_mb < CONTROL_MB * 1.5, f"measured {peak_mb:.0f} MB for {CONTROL_MB} MiB"


def test_corpus_covers_every_reader() -> None:
    """At least 150 cases; every family, and every reader and CLI command, has cases."""
    assert len(CASES) >= 150
    assert {c.family for c in CASES} == set(FAMILIES)
    targets = {c.target for c in CASES}
    for t in ("image", "restore", "restore-mask", "diffraction", "diffraction-path", "pr", "pr-mask", "xray",
              "xray-predict", "mri-image", "restore-mri-simulate", "kspace", "restore-mri", "mri-mask",
              "restore-mri-mask", "resume", "model", "model-weights", "runs"):
        assert t in targets, t
    assert len({c.id for c in CASES}) == len(CASES)
