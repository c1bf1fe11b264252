"""The CLI at its edges: odd ``--out`` values, reused folders, bad counts, Ctrl-C and a full disk.

Every case ends in one plain line on stderr and the exit status of the error policy (2: bad input,
1: a resource problem, 130: Ctrl-C), and a run folder never stays "running".
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
LONG = "x" * 300  # longer than any file system's NAME_MAX (255)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _one_error(capsys, prog: str) -> str:
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1, err
    assert err[0].startswith(f"{prog}: error: "), err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.fixture
def png(tmp_path) -> Path:
    p = tmp_path / "in.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((16, 16)) * 255).astype(np.uint8)).save(p)
    return p


@pytest.fixture
def pattern(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    obj = np.pad(rng.random((8, 8)), 12)
    p = tmp_path / "pattern.npy"
    np.save(p, np.abs(np.fft.fftshift(np.fft.fft2(obj))) ** 2)
    return p


def _argv(cmd: str, png: Path, pattern: Path, out: str) -> list[str]:
    return {
        "restore": ["restore", str(png), "--max-iters", "5", "--quiet"],
        "mri": ["restore", "phantom", "--task", "mri", "--simulate", "--size", "16", "--tv-iters", "5",
                "--max-iters", "5", "--quiet"],
        "pr": ["pr", str(pattern), "--starts", "1", "--recipe", "ER**5", "--quiet"],
        "gpr": ["gpr-sweep", "--n", "4", "--ratios", "2", "--trials", "1", "--iters", "5", "--quiet"],
    }[cmd] + ["--out", out]


PROG = {"restore": "inverse-studio restore", "mri": "inverse-studio restore", "pr": "inverse-studio pr",
        "gpr": "inverse-studio gpr-sweep"}


# --- 1. odd --out values --------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["restore", "mri", "pr", "gpr"])
def test_empty_out_is_refused_and_the_current_folder_stays_empty(tmp_path, png, pattern, capsys, monkeypatch,
                                                                 cmd):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert main(_argv(cmd, png, pattern, "")) == 2
    assert "--out is empty" in _one_error(capsys, PROG[cmd])
    assert os.listdir(cwd) == []


@pytest.mark.parametrize("cmd", ["restore", "mri", "pr"])
@pytest.mark.parametrize("kind", ["file", "long", "proc", "under-a-file"])
def test_out_folder_that_cannot_be_one_exits_2(tmp_path, png, pattern, capsys, cmd, kind):
    before = sorted(os.listdir(tmp_path))
    out = {"file": str(png), "long": str(tmp_path / LONG), "proc": "/proc/x",
           "under-a-file": str(png / "sub")}[kind]
    assert main(_argv(cmd, png, pattern, out)) == 2
    line = _one_error(capsys, PROG[cmd])
    assert {"file": "existing file", "long": "300 bytes long", "proc": "cannot write in /proc",
            "under-a-file": "not a folder"}[kind] in line
    assert sorted(os.listdir(tmp_path)) == before  # nothing written
    assert png.read_bytes()[:4] == b"\x89PNG"  # the file named as --out is untouched


@pytest.mark.parametrize("kind", ["folder", "slash", "proc", "no-parent", "long", "not-a-report", "empty"])
def test_gpr_out_must_be_a_writable_file(tmp_path, png, pattern, capsys, kind):
    out = {"folder": str(tmp_path), "slash": str(tmp_path / "new") + "/", "proc": "/proc/s.json",
           "no-parent": str(tmp_path / "missing" / "s.json"), "long": str(tmp_path / (LONG + ".json")),
           "not-a-report": str(png), "empty": ""}[kind]
    before = sorted(os.listdir(tmp_path))
    assert main(_argv("gpr", png, pattern, out)) == 2
    _one_error(capsys, PROG["gpr"])
    assert sorted(os.listdir(tmp_path)) == before
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_gpr_replaces_its_own_earlier_report_through_a_fresh_temp_file(tmp_path, png, pattern, capsys):
    out = tmp_path / "s.json"
    assert main(_argv("gpr", png, pattern, str(out))) == 0
    first = json.loads(out.read_text())
    (tmp_path / "s.json.tmp").symlink_to(png)  # the old predictable temp name is never followed
    assert main(_argv("gpr", png, pattern, str(out))) == 0
    assert json.loads(out.read_text())["success"] == first["success"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".gpr")) == []


# --- 2. a reused --out ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["restore", "mri", "pr"])
def test_a_folder_holding_a_run_is_refused_and_kept_as_it_was(tmp_path, png, pattern, capsys, cmd):
    out = tmp_path / "out"
    out.mkdir()  # an empty existing folder is fine
    assert main(_argv(cmd, png, pattern, str(out))) == 0
    capsys.readouterr()
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(_argv(cmd, png, pattern, str(out))) == 2
    line = _one_error(capsys, PROG[cmd])
    assert "already holds a run" in line and "pass a new folder" in line
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # no file replaced, no metrics row appended


def test_a_folder_with_only_a_stale_spec_is_refused_too(tmp_path, png, pattern, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "spec.json").write_text("{}")
    assert main(_argv("restore", png, pattern, str(out))) == 2
    assert "already holds a run (it has spec.json)" in _one_error(capsys, PROG["restore"])
    assert sorted(os.listdir(out)) == ["spec.json"]


# --- 3. counts out of range -----------------------------------------------------------------------------

@pytest.mark.parametrize("cmd, extra, expect", [
    ("restore", ["--max-iters", "-5"], "at least 1, got -5"),
    ("restore", ["--max-iters", "0"], "at least 1, got 0"),
    ("restore", ["--seed", "-1"], "at least 0"),
    ("restore", ["--corrupt", "gaussian_noise", "--severity", "9"], "severity 9"),
    ("restore", ["--corrupt", "gaussian_noise", "--severity", "-2"], "at least 0"),
    ("mri", ["--max-iters", "0"], "at least 1, got 0"),
    ("mri", ["--tv-iters", "-3"], "at least 1"),
    ("mri", ["--slice", "-1"], "at least 0"),
    ("mri", ["--noise-sigma", "-0.1"], "at least 0"),
    ("mri", ["--tv-weight", "nan"], "at least 0"),
    ("pr", ["--starts", "0"], "--starts"),
    ("pr", ["--average", "-1"], "at least 0"),
    ("pr", ["--threads", "-2"], "at least 0"),
    ("gpr", ["--iters", "0"], "at least 1"),
    ("gpr", ["--trials", "0"], "trials"),
    ("gpr", ["--threads", "-1"], "at least 0"),
])
def test_counts_out_of_range_exit_2_with_a_sentence(tmp_path, png, pattern, capsys, cmd, extra, expect):
    out = tmp_path / ("o.json" if cmd == "gpr" else "o")
    assert main(_argv(cmd, png, pattern, str(out)) + extra) == 2
    assert expect in _one_error(capsys, PROG[cmd])
    assert not out.exists()


def test_mri_checks_counts_from_any_parser(tmp_path):
    import argparse

    from engine.core.errors import InputError
    from engine.mri.cli import add_arguments, run_from_args

    ap = argparse.ArgumentParser()  # another caller's parser: plain int flags
    ap.add_argument("input")
    ap.add_argument("--out")
    ap.add_argument("--max-iters", type=int)
    ap.add_argument("--device", default="cpu")
    add_arguments(ap)
    a = ap.parse_args(["phantom", "--simulate", "--size", "16", "--out", str(tmp_path / "o"), "--max-iters", "-5"])
    with pytest.raises(InputError, match="--max-iters -5"):
        run_from_args(a)
    assert not (tmp_path / "o").exists()


# --- 4. Ctrl-C ------------------------------------------------------------------------------------------

def test_ctrl_c_stops_a_restore_with_a_checkpoint_and_exit_130(tmp_path, png):
    out = tmp_path / "run"
    env = {**os.environ, "INVERSE_STUDIO_THREADS": "1", "INVERSE_STUDIO_LOGS": str(tmp_path / "logs")}
    code = "import sys; from engine.cli.main import main; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, "restore", str(png), "--out", str(out),
                             "--max-iters", "100000", "--stopping", "none", "--quiet"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        t_end = time.time() + 240
        while time.time() < t_end and proc.poll() is None:
            p = out / "metrics.jsonl"
            if p.exists() and len(p.read_text().splitlines()) >= 3:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    last = _lines(err)[-1]
    assert last.startswith("inverse-studio restore: error: interrupted at iteration "), err
    assert "Traceback" not in err

    from engine.runs.store import Run

    run = Run(out)
    st = run.status()
    assert st["state"] == "cancelled" and "Ctrl-C" in st["message"] and "resumed" in st["message"]
    rows = run.metrics()
    its = [r["iteration"] for r in rows]
    assert its == list(range(1, len(its) + 1)) and len(its) >= 3  # no gap, no duplicate
    assert st["iteration"] == its[-1]
    assert run.checkpoint_info()["iteration"] == its[-1]  # a resume continues right after the last row
    assert run.load_checkpoint()["solver"]
    csv_rows = (out / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in csv_rows] == its
    assert (out / "result.png").is_file()
    assert f"iteration {its[-1]}" in last


def test_a_second_ctrl_c_still_leaves_the_run_not_running(tmp_path, png, capsys, monkeypatch):
    import engine.jobs

    def interrupted(run, **kw):
        run.set_status(state="running")
        raise KeyboardInterrupt

    monkeypatch.setattr(engine.jobs, "run_inline", interrupted)
    out = tmp_path / "run"
    assert main(_argv("restore", png, png, str(out))) == 130
    assert "interrupted" in _one_error(capsys, PROG["restore"])
    st = json.loads((out / "status.json").read_text())
    assert st["state"] == "interrupted" and st["message"]


# --- 5. a full disk -------------------------------------------------------------------------------------

def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("cmd", ["restore", "mri"])
def test_a_full_disk_mid_run_fails_the_run_with_one_line(tmp_path, png, pattern, capsys, monkeypatch, cmd):
    from engine.runs.store import Run

    real_log = Run.log

    def log(self, row):
        if row.get("iteration", 0) >= 3:
            _enospc()
        real_log(self, row)

    monkeypatch.setattr(Run, "log", log)
    out = tmp_path / "run"
    assert main(_argv(cmd, png, pattern, str(out))) == 1
    line = _one_error(capsys, PROG[cmd])
    assert "the disk is full" in line and "error.txt" in line
    st = json.loads((out / "status.json").read_text())
    assert st["state"] == "failed" and "the disk is full" in st["message"]
    assert (out / "error.txt").read_text().strip()
    assert not (out / "summary.json").exists() or json.loads((out / "summary.json").read_text()) == {}


def test_a_full_disk_in_the_run_bookkeeping_still_marks_it_failed(tmp_path, png, capsys, monkeypatch):
    import engine.jobs

    def broken(run, **kw):
        run.set_status(state="running")
        _enospc()

    monkeypatch.setattr(engine.jobs, "run_inline", broken)
    out = tmp_path / "run"
    assert main(_argv("restore", png, png, str(out))) == 1
    assert "the disk is full" in _one_error(capsys, PROG["restore"])
    st = json.loads((out / "status.json").read_text())
    assert st["state"] == "failed" and st["message"] == "the disk is full"
    assert "No space left" in (out / "error.txt").read_text()


def test_a_full_disk_on_the_final_files_fails_the_run(tmp_path, png, capsys, monkeypatch):
    import engine.cli.common as common

    monkeypatch.setattr(common, "write_metrics_csv", _enospc)
    out = tmp_path / "run"
    assert main(_argv("restore", png, png, str(out))) == 1
    assert "the disk is full" in _one_error(capsys, PROG["restore"])
    st = json.loads((out / "status.json").read_text())
    assert st["state"] == "failed" and (out / "error.txt").read_text().strip()


def test_a_full_disk_while_saving_the_inputs(tmp_path, png, capsys, monkeypatch):
    from engine.runs.store import Run

    monkeypatch.setattr(Run, "save_array", _enospc)
    out = tmp_path / "run"
    assert main(_argv("restore", png, png, str(out))) == 1
    assert "the disk is full" in _one_error(capsys, PROG["restore"])
    assert json.loads((out / "status.json").read_text())["state"] == "failed"


def test_a_full_disk_leaves_no_partial_pr_output(tmp_path, png, pattern, capsys, monkeypatch):
    import engine.cdi.workflow as workflow

    monkeypatch.setattr(workflow, "write_outputs", _enospc)
    out = tmp_path / "pr"
    assert main(_argv("pr", png, pattern, str(out))) == 1
    assert "the disk is full" in _one_error(capsys, PROG["pr"])
    assert not out.exists() and not list(tmp_path.glob(".pr-*"))


def test_a_full_disk_leaves_the_earlier_gpr_report(tmp_path, png, pattern, capsys, monkeypatch):
    import engine.cli.gpr as gpr_cmd

    out = tmp_path / "s.json"
    assert main(_argv("gpr", png, pattern, str(out))) == 0
    first = out.read_text()
    capsys.readouterr()
    monkeypatch.setattr(gpr_cmd.os, "fdopen", _enospc)
    assert main(_argv("gpr", png, pattern, str(out))) == 1
    assert "the disk is full" in _one_error(capsys, PROG["gpr"])
    assert out.read_text() == first and not list(tmp_path.glob(".gpr-sweep-*"))


# --- the runs listing -----------------------------------------------------------------------------------

def test_runs_listing_checks_its_folder_and_never_creates_it(tmp_path, png, capsys):
    for value, expect in (("", "--runs-dir is empty"), (str(png), "is a file"),
                          (str(tmp_path / "missing"), "does not exist")):
        assert main(["runs", "--runs-dir", value]) == 2
        assert expect in _one_error(capsys, "inverse-studio runs")
    assert not (tmp_path / "missing").exists()

    from engine.runs import RunStore

    rid = RunStore(tmp_path / "store").create({"kind": "restore"}).id
    assert main(["runs", "--runs-dir", str(tmp_path / "store")]) == 0
    assert capsys.readouterr().out.split("\t")[:3] == [rid, "restore", "queued"]
