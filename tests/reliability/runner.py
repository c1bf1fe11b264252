"""Run corpus cases, each in a child forked from one warmed-up process, and record how each one ended.

``python -m tests.reliability.runner --work DIR --results FILE [--cases IDS.json] [--jobs N]``

The parent imports every reader, torch and the CLI once, builds every sample's bytes once, then forks one
child per case (``--jobs`` at a time). A child writes its case's files in its own folder, resets its
memory high-water mark (``/proc/self/clear_refs``), feeds the file to its target, and reports how it
ended, what it printed, its peak memory above the warmed-up process, and what it left behind. A child
that dies (a crash in C code, the per-case alarm) cannot hide it: the parent records its signal. A
control case (:data:`corpus.CONTROL`, 256 MiB allocated) is always run, to show the peak is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.reliability import corpus
from tests.reliability.corpus import MARKER_ENV, Case

CASE_TIMEOUT_S = 90  # one case; the readers refuse from headers, so seconds at most even on a busy machine
RUN_ID = "20260101-120000-restore-abc123"  # a run id the store accepts


@dataclass
class Ctx:
    """A case being run: its folder, its input file, and where a command's output would go."""

    case: Case
    dir: Path
    path: Path
    data: bytes
    out: Path
    watch: Path | None = None  # a folder the case must leave as it was (a run being resumed)

    @property
    def filename(self) -> str:
        return self.path.name


Call = tuple[str, object]  # ("lib", a function of no argument) or ("cli", argv)


def _good_png(c: Ctx) -> Path:
    p = c.dir / "good.png"
    p.write_bytes(corpus.png(corpus.grey(64)))
    return p


def _good_pattern(c: Ctx) -> Path:
    p = c.dir / "good.npy"
    p.write_bytes(corpus.npy(corpus.pattern()))
    return p


def _cli(*argv: str) -> Call:
    return "cli", [str(a) for a in argv]


_QUIET = ("--quiet", "--device", "cpu")


def _run_folder(c: Ctx) -> Path:
    """A failed restore run in the case's run store, with the sample written into it."""
    from engine.runs import RunStore

    root = c.dir / "runs"
    run = RunStore.create_at(root / RUN_ID, {"kind": "restore", "params": {"task": "denoise", "device": "cpu"}})
    run.save_array("observed", corpus.grey(16).astype("float32") / 255)
    run.log({"iteration": 1, "loss": 0.5})
    run.set_status(state="failed", iteration=1, message="stopped")
    (run.path / c.filename).write_bytes(c.data)
    c.path.unlink()
    c.path = run.path / c.filename
    c.watch = run.path
    return root


def t_resume(c: Ctx) -> Call:
    from engine.jobs.manager import JobManager
    from engine.runs import RunStore

    root = _run_folder(c)
    return "lib", lambda: JobManager(RunStore(root), devices=["cpu"]).resume(RUN_ID)


def t_runs(c: Ctx) -> Call:
    root = _run_folder(c)
    return _cli("runs", "--runs-dir", root)


def t_model_weights(c: Ctx) -> Call:
    from engine.xray.predict import DEFAULT_MODEL

    cfg = json.loads(DEFAULT_MODEL.read_text())
    cfg.update(weights=c.filename, format="state_dict")
    cfg.pop("sha256", None)
    (c.dir / "model.json").write_text(json.dumps(cfg))
    return _cli("xray", "predict", _good_png(c), "--model", c.dir / "model.json", "--json")


def _lib(fn: Callable[[], object]) -> Call:
    return "lib", fn


def _imageio():
    return importlib.import_module("engine.core.imageio")


def _readers():
    return importlib.import_module("engine.cdi.readers")


def _mri():
    return importlib.import_module("engine.mri.inputs")


TARGETS: dict[str, Callable[[Ctx], Call]] = {
    # images
    "image": lambda c: _lib(lambda: _imageio().read_image(c.data, name=c.filename)),
    "image-path": lambda c: _lib(lambda: _imageio().read_image(c.path)),
    "restore": lambda c: _cli("restore", c.path, "--out", c.out, *_QUIET),
    "restore-mask": lambda c: _cli("restore", _good_png(c), "--task", "inpaint", "--mask", c.path,
                                   "--out", c.out, *_QUIET),
    "restore-reference": lambda c: _cli("restore", _good_png(c), "--reference", c.path, "--out", c.out, *_QUIET),
    # diffraction
    "diffraction": lambda c: _lib(lambda: _readers().load_diffraction(c.data, name=c.filename, **c.case.options)),
    "diffraction-path": lambda c: _lib(lambda: _readers().load_diffraction(c.path)),
    "diffraction-mask": lambda c: _lib(lambda: _readers().load_diffraction(
        corpus.npy(corpus.pattern()), name="good.npy", mask=c.data, mask_name=c.filename)),
    "pr": lambda c: _cli("pr", c.path, "--out", c.out, "--starts", "1", *_QUIET),
    "pr-mask": lambda c: _cli("pr", _good_pattern(c), "--mask", c.path, "--out", c.out, "--starts", "1", *_QUIET),
    "pr-support": lambda c: _cli("pr", _good_pattern(c), "--support", c.path, "--out", c.out, "--starts", "1",
                                 *_QUIET),
    # radiographs
    "xray": lambda c: _lib(lambda: importlib.import_module("engine.xray.display").read_xray(c.data, c.filename)),
    "xray-predict": lambda c: _cli("xray", "predict", c.path, "--json"),
    "xray-predict-saliency": lambda c: _cli("xray", "predict", c.path, "--saliency", "gradcam", "--out", c.out,
                                            "--json"),
    "model": lambda c: _cli("xray", "predict", _good_png(c), "--model", c.path, "--json"),
    "model-weights": t_model_weights,
    # MRI
    "mri-image": lambda c: _lib(lambda: _mri().read_grey(c.data, c.filename)),
    "restore-mri-simulate": lambda c: _cli("restore", c.path, "--task", "mri", "--simulate", "--out", c.out,
                                           *_QUIET),
    "kspace": lambda c: _lib(lambda: _mri().read_kspace(c.data, c.filename, **c.case.options)),
    "restore-mri": lambda c: _cli("restore", c.path, "--task", "mri", "--out", c.out, *_QUIET,
                                  *c.case.options.get("flags", ())),
    "mri-mask": lambda c: _lib(lambda: _mri().read_mask(c.data, (64, 64), c.filename)),
    "restore-mri-mask": lambda c: _cli("restore", "phantom", "--task", "mri", "--simulate", "--size", "64",
                                       "--mask", c.path, "--out", c.out, *_QUIET),
    # run folders and checkpoints
    "resume": t_resume,
    "runs": t_runs,
    "control-alloc": lambda c: _lib(_allocate_then_refuse),
}


def _allocate_then_refuse() -> None:
    import numpy as np

    block = np.ones(corpus.CONTROL_MB * 2**20, np.uint8)  # every page touched
    raise corpus_input_error()(f"control: {int(block.sum()) >> 20} MiB allocated")


# ------------------------------------------------------------------------------------------ one case
def _kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if not p.is_symlink()}


def _tail(path: Path, n: int = 6000) -> str:
    try:
        return path.read_bytes()[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


def run_case(case: Case, work: Path) -> dict:
    """Run ``case`` in this (forked) process; the result as a plain dict."""
    d = work / case.id.replace("/", "__").replace("@", "--")
    io_dir, tmp, logs = d / ".io", d / ".tmp", d / ".logs"
    for p in (io_dir, tmp, logs):
        p.mkdir(parents=True, exist_ok=True)
    os.environ.update(TMPDIR=str(tmp), INVERSE_STUDIO_LOGS=str(logs), INVERSE_STUDIO_RUNS=str(d / ".runs"),
                      **{MARKER_ENV: str(d / "EXECUTED")})
    tempfile.tempdir = str(tmp)
    s = corpus.SAMPLES[case.sample]
    path = d / s.filename
    data = corpus.sample_bytes(case.sample)
    if case.sample == "folder":
        path.mkdir()
    elif case.sample != "missing":
        path.write_bytes(data)
    c = Ctx(case, d, path, data, d / "out")
    kind, call = TARGETS[case.target](c)
    before = {k: v for k, v in _listing(c.watch).items() if k != ".lock"} if c.watch else {}
    res: dict = {"id": case.id, "kind": kind}
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fo = os.open(io_dir / "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    fe = os.open(io_dir / "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fo, 1)
    os.dup2(fe, 2)
    res["hwm_reset"] = _reset_peak()
    if not res["hwm_reset"]:  # no clear_refs (old kernel, locked /proc): Python-level allocations only
        tracemalloc.start()
    res["base_kb"] = _kb("VmRSS")
    t0 = time.perf_counter()
    try:
        if kind == "cli":
            res["argv"] = [a.replace(str(d), "CASE") for a in call]
            res["rc"] = int(importlib.import_module("engine.cli.main").main(call))
            res["outcome"] = "exit"
        else:
            call()
            res["outcome"] = "accepted"
    except corpus_input_error() as e:
        res.update(outcome="InputError", message=str(e))
    except BaseException as e:  # noqa: BLE001 - everything else is what the test reports
        res.update(outcome="crash", error=type(e).__name__, message=str(e)[:2000],
                   traceback=traceback.format_exc()[-4000:])
    finally:
        res["seconds"] = round(time.perf_counter() - t0, 3)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        res["peak_kb"] = _kb("VmHWM")
        if not res["hwm_reset"]:
            res["peak_kb"] = res["base_kb"] + max(res["peak_kb"] - res["base_kb"],
                                                  tracemalloc.get_traced_memory()[1] // 1024)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    res["stdout"] = _tail(io_dir / "stdout")
    res["stderr"] = _tail(io_dir / "stderr")
    res["out_left"] = sorted(str(p.relative_to(c.out)) for p in c.out.rglob("*")) if c.out.is_dir() else []
    res["out_is_file"] = c.out.exists() and not c.out.is_dir()
    res["tmp_left"] = sorted(p.name for p in tmp.iterdir())
    res["logs_left"] = sorted(p.name for p in logs.iterdir())
    res["executed"] = (d / "EXECUTED").exists()
    if c.watch is not None:
        after = {k: v for k, v in _listing(c.watch).items() if k != ".lock"}
        res["watch_changed"] = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return res


def corpus_input_error() -> type[BaseException]:
    return importlib.import_module("engine.core.errors").InputError


# ------------------------------------------------------------------------------------------ the parent
def warm_up(samples: set[str]) -> None:
    """Import what the targets use and build the ``samples``, so a child's peak counts its case only."""
    for name in ("numpy", "torch", "h5py", "tifffile", "fabio", "pydicom", "PIL.Image", "skimage.transform",
                 "skimage.data", "engine.core.imageio", "engine.cdi.readers", "engine.cdi.workflow",
                 "engine.xray.display", "engine.xray.predict", "engine.xray.workflow", "engine.xray.domain",
                 "engine.mri.inputs", "engine.mri.workflow", "engine.dip.inputs", "engine.jobs.manager",
                 "engine.runs"):
        importlib.import_module(name)
    from PIL import Image

    Image.init()
    importlib.import_module("engine.cli.main").build_parser()
    for key in sorted(samples):
        corpus.sample_bytes(key)


def run_all(cases: list[Case], work: Path, *, jobs: int = 2, on_result: Callable[[dict], None]) -> None:
    """Fork one child per case, ``jobs`` at a time; ``on_result`` gets each result as it comes."""
    warm_up({c.sample for c in cases})
    base_kb = _kb("VmRSS")
    todo = list(cases)
    running: dict[int, tuple[Case, float, Path]] = {}
    while todo or running:
        while todo and len(running) < jobs:
            case = todo.pop(0)
            result_file = work / ".results" / f"{len(todo)}.json"
            result_file.parent.mkdir(parents=True, exist_ok=True)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the child: run one case, write its result, leave without cleanup handlers
                code = 0
                try:
                    signal.alarm(CASE_TIMEOUT_S)
                    res = run_case(case, work)
                    result_file.write_text(json.dumps(res))
                except BaseException:  # noqa: BLE001
                    code = 3
                    with contextlib.suppress(Exception):
                        result_file.write_text(json.dumps({"id": case.id, "outcome": "runner-error",
                                                           "traceback": traceback.format_exc()}))
                os._exit(code)
            running[pid] = (case, time.perf_counter(), result_file)
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        case, t0, result_file = running.pop(pid)
        try:
            res = json.loads(result_file.read_text())
        except (OSError, ValueError):
            res = {"id": case.id}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            res.update(outcome="died", signal=signal.Signals(sig).name,
                       message=f"the child was killed by {signal.Signals(sig).name}"
                               + (" (the per-case time limit)" if sig == signal.SIGALRM else ""))
        res.update(id=case.id, wall=round(time.perf_counter() - t0, 3), child_maxrss_kb=usage.ru_maxrss,
                   parent_base_kb=base_kb)
        on_result(res)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path, help="folder for the cases' files")
    ap.add_argument("--results", required=True, type=Path, help="JSON lines, one per case")
    ap.add_argument("--cases", type=Path, help="JSON list of case ids to run (default: all)")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    everything = corpus.cases()
    if a.cases:
        wanted = set(json.loads(a.cases.read_text()))
        everything = [c for c in everything if c.id in wanted]
    everything.append(corpus.CONTROL)
    a.work.mkdir(parents=True, exist_ok=True)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crashing child leaves no core file
    with open(a.results, "w", encoding="utf-8") as f:
        def write(res: dict) -> None:
            f.write(json.dumps(res) + "\n")
            f.flush()

        run_all(everything, a.work, jobs=max(1, a.jobs), on_result=write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
