"""Natural robustness of the chest X-ray classifier: ImageNet-C corruptions, and DIP as a denoising front end.

Every film is decoded grey, resized to the classifier's input size (as its fixed preprocessing does), then
corrupted with one of the grey ImageNet-C corruptions of :mod:`engine.dip.corruptions` at severities 1-5 and
classified; AUC and accuracy (at the model's operating threshold) are reported per corruption and severity,
beside the clean baseline. For the noise corruptions, a smaller subset of the same corrupted films is also
restored with the Deep Image Prior (preset ``cpu``, ES-WMV early stopping) before it is classified, so the
table says whether an agnostic denoising front end helps.

Films: by default the model's own validation split (patients never trained on), listed next to the model
as ``NAME_val_split.txt`` (``HELD_OUT_MODEL`` ships one; a model without a list is refused, as a
cross-validated ensemble has seen every film of its folder); ``split="all"`` takes every film of the folder
(e.g. a held-out test folder).
A subset is balanced and seeded: ``films // 2`` normal and the rest pneumonia, drawn with
``numpy.random.default_rng(seed)``; the DIP films are the first ``dip_films // 2`` of each class of that
draw, so they are a subset of the main films. Corruption noise is seeded per (film, corruption,
severity), so a film carries the same corruption with and without DIP.

Example::

    result = evaluate("data/cxr-pneumonia/train", films=200, dip_films=24)
    write_outputs(result, "out")   # out/robustness.json, out/robustness.csv
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import InputError
from engine.core.machine import machine_info
from engine.dip.corruptions import INFO, corrupt
from engine.xray.calibration import roc_auc
from engine.xray.data import LABELS, Item, decode_grey, list_dataset

#: the 15 corruptions of ImageNet-C (Hendrycks & Dietterich, 2019), in the paper's order
IMAGENET_C_15: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
#: corruptions the DIP front end may restore (the denoising task fits additive and photon noise)
NOISE_CORRUPTIONS: tuple[str, ...] = tuple(
    n for n, i in INFO.items() if i.source == "imagenet-c" and i.family == "noise"
)
DIP_DEFAULT: tuple[str, ...] = ("gaussian_noise", "shot_noise", "impulse_noise")
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
DIP_SEVERITIES: tuple[int, ...] = (1, 3, 5)
RESULT_FILE = "robustness.json"
#: the shipped model whose validation split (patients it never trained on) is listed beside it
HELD_OUT_MODEL = Path(__file__).resolve().parents[2] / "assets" / "models" / "cxr_pneumonia_resnet_small.json"
CSV_FILE = "robustness.csv"
KIND = "xray_robustness"
CSV_COLUMNS = ("group", "corruption", "severity", "dip", "n", "auc", "accuracy", "sensitivity", "specificity")

Progress = Callable[[int, int, str], Any]


# ------------------------------------------------------------------------------------------- films
def select_films(root: str | Path, *, films: int | None = 200, split: str = "val", seed: int = 0,
                 split_file: Path | None = None) -> tuple[list[Item], dict]:
    """The films of a run and a record of how they were chosen.

    Parameters
    ----------
    root : folder with ``NORMAL/`` and ``PNEUMONIA/`` images.
    films : size of the balanced seeded subset; None or 0 takes every film of the split.
    split : ``"val"`` (the files of ``split_file`` found in ``root``; refused without a list) or ``"all"``.
    seed : seed of the subset draw.
    split_file : the model's validation list (``LABEL/file`` per line).

    Returns
    -------
    items : the films, normal first, in draw order within each class.
    record : ``split``, ``source``, ``seed``, ``rule``, ``n``, ``normal``, ``pneumonia``, ``available``.
    """
    if split not in ("val", "all"):
        raise InputError(f"split {split!r} is not valid; expected 'val' or 'all'")
    if films is not None and films < 0:
        raise InputError(f"films is {films}; expected 0 (all) or a positive number")
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; expected a folder with NORMAL/ and PNEUMONIA/ images")
    items = list_dataset(root)
    source = "every film of the folder"
    if split == "val":
        if split_file is not None:
            wanted = {ln.strip() for ln in split_file.read_text(encoding="utf-8").splitlines() if ln.strip()}
            items = [it for it in items if f"{LABELS[it.label]}/{it.path.name}" in wanted]
            source = f"the model's validation split ({split_file.name})"
            if not items:
                raise InputError(f"none of the films of {split_file.name} are in {root}; use split 'all' "
                                 "for a folder that is not the model's training folder")
        else:
            # without the list there is no telling which films the model saw (a cross-validated ensemble
            # saw all of them), so nothing is guessed
            raise InputError("the model has no validation list (NAME_val_split.txt beside its config); use "
                             "split 'all' on films it never trained on, or a model whose list ships with it "
                             f"({HELD_OUT_MODEL.name})")
    by_class = [[it for it in items if it.label == k] for k in range(len(LABELS))]
    if not all(by_class):
        raise InputError("the films need both classes (NORMAL and PNEUMONIA) to score an AUC")
    available = {LABELS[k]: len(v) for k, v in enumerate(by_class)}
    rng = np.random.default_rng(seed)
    chosen: list[list[Item]] = []
    for k, group in enumerate(by_class):
        order = [group[i] for i in rng.permutation(len(group))]
        if films:
            want = films // 2 if k == 0 else films - films // 2
            order = order[:want]
        chosen.append(order)
    rule = (f"balanced: {films // 2} normal and {films - films // 2} pneumonia (fewer where the split has "
            f"fewer), drawn with numpy.random.default_rng({seed})" if films else "every film of the split")
    out = chosen[0] + chosen[1]
    record = {"split": split, "source": source, "seed": seed, "rule": rule, "n": len(out),
              "normal": len(chosen[0]), "pneumonia": len(chosen[1]), "available": available}
    return out, record


def dip_subset(items: Sequence[Item], n: int) -> list[Item]:
    """The first ``n // 2`` normal and ``n - n // 2`` pneumonia films of ``items`` (a balanced prefix)."""
    normal = [it for it in items if it.label == 0][: n // 2]
    pneu = [it for it in items if it.label == 1][: n - n // 2]
    return normal + pneu


def _rel(it: Item) -> str:
    return f"{LABELS[it.label]}/{it.path.name}"


# ----------------------------------------------------------------------------------------- scoring
def score(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict:
    """AUC, accuracy, sensitivity and specificity at ``threshold`` (P >= threshold is PNEUMONIA), and n."""
    y = np.asarray(labels).astype(bool)
    p = np.asarray(probs, dtype=np.float64)
    pred = p >= threshold
    auc = roc_auc(y, p)

    def r(v: float) -> float | None:
        return None if v is None or not math.isfinite(v) else round(float(v), 4)

    return {"auc": r(auc), "accuracy": r(float((pred == y).mean())) if len(y) else None,
            "sensitivity": r(float(pred[y].mean())) if y.any() else None,
            "specificity": r(float((~pred[~y]).mean())) if (~y).any() else None, "n": int(len(y))}


def _rng(seed: int, film: int, corruption: str, severity: int) -> np.random.Generator:
    # one stream per (film, corruption, severity): the DIP rows see exactly the films of the main sweep
    return np.random.default_rng([seed, film, IMAGENET_C_15.index(corruption) if corruption in IMAGENET_C_15
                                  else 100 + sorted(INFO).index(corruption), severity])


def _check_names(names: Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    out = list(names)
    if not out:
        raise InputError(f"no {what} given; expected at least one of: {', '.join(allowed)}")
    bad = [n for n in out if n not in allowed]
    if bad:
        raise InputError(f"unknown {what} {bad[0]!r}; expected names from: {', '.join(allowed)}")
    return out


def _check_severities(sevs: Sequence[int], what: str) -> list[int]:
    out = [int(s) for s in sevs]
    if not out or any(s not in SEVERITIES for s in out):
        raise InputError(f"{what} {list(sevs)} are not valid; expected integers from 1 to 5")
    return out


# -------------------------------------------------------------------------------------------- run
def evaluate(root: str | Path, *, films: int | None = 200, dip_films: int = 24, split: str = "val",
             corruptions: Sequence[str] = IMAGENET_C_15, severities: Sequence[int] = SEVERITIES,
             dip_corruptions: Sequence[str] = DIP_DEFAULT, dip_severities: Sequence[int] = DIP_SEVERITIES,
             dip_preset: str = "cpu", dip_max_iters: int | None = None, model: str | Path = HELD_OUT_MODEL,
             seed: int = 0, dip_clean: bool = True, threads: int = 1, device: str | None = "cpu",
             progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> dict:
    """Score the classifier on corrupted films, with the DIP front end on the noise corruptions.

    Parameters
    ----------
    root : folder with ``NORMAL/`` and ``PNEUMONIA/`` films.
    films, split, seed : the films (see :func:`select_films`).
    dip_films : films restored with DIP (a balanced prefix of the main films); 0 turns DIP off.
    corruptions, severities : the grid of the main table (default: the 15 of ImageNet-C x 1-5).
    dip_corruptions, dip_severities : the grid of the DIP rows (noise corruptions only).
    dip_clean : also restore the clean DIP films (what the front end costs a film that needs none).
    dip_preset, dip_max_iters : DIP recipe and an optional cap on its iterations (the preset's budget when
        None); ES-WMV stops each restoration.
    model : classifier spec for :meth:`engine.xray.predict.Classifier.load` (default ``HELD_OUT_MODEL``, whose
        validation split is known; ``"default"`` is the app's model).
    threads : torch threads for inference and DIP.
    device : torch device of DIP (the classifier runs on the CPU).
    progress : ``progress(done, total, text)`` after each unit of work.
    cancelled : checked between units; when it returns True the result so far is returned, ``complete``
        False.

    Returns
    -------
    dict
        The JSON record written by :func:`write_outputs` (``clean``, ``rows``, ``dip``, ``films``, ``model``,
        ``wall_seconds``, ``machine``, ``complete``).
    """
    from engine.dip.solver import restore
    from engine.xray.predict import Classifier, torch_threads

    corruptions = _check_names(corruptions, sorted(INFO), "corruption")
    if any(INFO[n].source != "imagenet-c" for n in corruptions):
        raise InputError("corruptions must be ImageNet-C names (severities 1-5)")
    severities = _check_severities(severities, "severities")
    dip_corruptions = _check_names(dip_corruptions, NOISE_CORRUPTIONS, "DIP corruption") if dip_films else []
    dip_severities = _check_severities(dip_severities, "DIP severities") if dip_films else []
    if dip_films < 0:
        raise InputError(f"dip_films is {dip_films}; expected 0 (no DIP) or a positive number")
    if dip_max_iters is not None and dip_max_iters < 1:
        raise InputError(f"dip_max_iters is {dip_max_iters}; expected a positive number of iterations")
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    machine = machine_info()
    clf = Classifier.load(model)
    clf.threads = max(1, int(threads))
    split_file = _val_split_file_for(model, clf) if split == "val" else None
    items, record = select_films(root, films=films, split=split, seed=seed, split_file=split_file)
    dip_items = dip_subset(items, dip_films) if dip_films else []
    record["files"] = [_rel(it) for it in items]
    record["dip_files"] = [_rel(it) for it in dip_items]
    record["dip_n"] = len(dip_items)
    size = clf.input_size
    clean = [decode_grey(it.path, size) for it in items]  # resize first: corrupt at the model's input size
    labels = np.array([it.label for it in items])
    dip_index = [items.index(it) for it in dip_items]
    total = (1 + len(corruptions) * len(severities)
             + len(dip_index) * (int(dip_clean) + len(dip_corruptions) * len(dip_severities)))
    done = 0
    stop = cancelled or (lambda: False)

    def tick(text: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, text)

    def classify(imgs: list[np.ndarray]) -> np.ndarray:
        return clf.predict_proba(imgs, batch_size=64)

    walls: dict[str, float] = {}
    t = time.perf_counter()
    p_clean = classify(clean)
    result: dict[str, Any] = {
        "kind": KIND, "version": 1, "created": started,
        # a file is named, not its path (a path can say whose machine it ran on)
        "model": {"name": clf.name, "spec": Path(str(model)).name if Path(str(model)).is_file() else str(model),
                  "input_size": size, "threshold": clf.threshold},
        "films": record, "clean": score(labels, p_clean, clf.threshold), "rows": [],
        "corruptions": {n: INFO[n].label for n in corruptions}, "severities": severities,
    }
    tick("clean films")
    walls["clean_s"] = round(time.perf_counter() - t, 2)
    noisy_cache: dict[tuple[str, int], list[np.ndarray]] = {}
    complete = True
    t = time.perf_counter()
    for name in corruptions:
        for sev in severities:
            if stop():
                complete = False
                break
            imgs = [corrupt(x, name, severity=sev, seed=_rng(seed, i, name, sev)) for i, x in enumerate(clean)]
            p = classify(imgs)
            result["rows"].append({"corruption": name, "severity": sev, **score(labels, p, clf.threshold)})
            if name in dip_corruptions and sev in dip_severities:
                noisy_cache[(name, sev)] = [imgs[i] for i in dip_index]
            tick(f"{INFO[name].label}, severity {sev}")
        if not complete:
            break
    walls["corruptions_s"] = round(time.perf_counter() - t, 2)

    if dip_index and complete:
        t = time.perf_counter()
        dip_labels = labels[dip_index]
        iters: list[int] = []

        def denoise(img: np.ndarray) -> np.ndarray:
            with torch_threads(clf.threads):
                r = restore(img, task="denoise", preset=dip_preset, stopping="wmv", seed=seed, device=device,
                            max_iters=dip_max_iters)
            iters.append(r.stopped_iteration)
            return r.image

        dip: dict[str, Any] = {"preset": dip_preset, "stopping": "wmv", "max_iters": dip_max_iters,
                               "device": device or "auto", "corruptions": dip_corruptions,
                               "severities": dip_severities, "rows": []}
        base = [clean[i] for i in dip_index]
        dip["clean_without"] = score(dip_labels, p_clean[dip_index], clf.threshold)
        restored = []
        for k, x in enumerate(base if dip_clean else []):
            if stop():
                complete = False
                break
            restored.append(denoise(x))
            tick(f"DIP on clean film {k + 1}/{len(base)}")
        if complete and dip_clean:
            dip["clean_with"] = score(dip_labels, classify(restored), clf.threshold)
        for name in dip_corruptions if complete else []:
            for sev in dip_severities:
                noisy = noisy_cache.get((name, sev))
                if noisy is None:  # a DIP noise outside the main grid: corrupt the subset here
                    noisy = [corrupt(clean[i], name, severity=sev, seed=_rng(seed, i, name, sev))
                             for i in dip_index]
                first = len(iters)
                restored = []
                for k, x in enumerate(noisy):
                    if stop():
                        complete = False
                        break
                    restored.append(denoise(x))
                    tick(f"DIP on {INFO[name].label}, severity {sev}, film {k + 1}/{len(noisy)}")
                if not complete:
                    break
                without = score(dip_labels, classify(noisy), clf.threshold)
                with_ = score(dip_labels, classify(restored), clf.threshold)
                dip["rows"].append({
                    "corruption": name, "severity": sev, "n": without["n"],
                    "without": without, "with": with_,
                    "mean_iterations": round(float(np.mean(iters[first:])), 1),
                })
            if not complete:
                break
        dip["mean_iterations"] = round(float(np.mean(iters)), 1) if iters else None
        walls["dip_s"] = round(time.perf_counter() - t, 2)
        result["dip"] = dip
    walls["total_s"] = round(time.perf_counter() - t0, 2)
    result["wall_seconds"] = walls
    result["machine"] = machine
    result["threads"] = clf.threads  # inference and DIP ran with these torch threads, whatever machine says
    result["loadavg_end"] = machine_info().get("loadavg_1_5_15")
    result["complete"] = complete
    return result


def _val_split_file_for(model: str, clf: Any) -> Path | None:
    """The validation list of a shipped or trained model: ``NAME_val_split.txt`` beside its config."""
    from engine.xray.predict import DEFAULT_MODEL

    cfg = DEFAULT_MODEL if str(model) in ("", "default") else Path(str(model))
    name = clf.config.get("name")
    if not name:
        return None
    path = cfg.parent / f"{name}_val_split.txt"
    return path if path.is_file() else None


# ----------------------------------------------------------------------------------------- outputs
def table_rows(result: dict) -> list[dict]:
    """Flat rows (the CSV's): the clean baseline, every corruption x severity, then the DIP rows."""
    metrics = ("n", "auc", "accuracy", "sensitivity", "specificity")
    rows = [{"group": "clean", "corruption": "clean", "severity": 0, "dip": "no",
             **{k: result["clean"].get(k) for k in metrics}}]
    for r in result.get("rows", []):
        rows.append({"group": "corruption", "corruption": r["corruption"], "severity": r["severity"], "dip": "no",
                     **{k: r.get(k) for k in metrics}})
    dip = result.get("dip") or {}
    for key, flag in (("clean_without", "no"), ("clean_with", "yes")):
        if key in dip:
            rows.append({"group": "dip", "corruption": "clean", "severity": 0, "dip": flag,
                         **{k: dip[key].get(k) for k in metrics}})
    for r in dip.get("rows", []):
        for key, flag in (("without", "no"), ("with", "yes")):
            rows.append({"group": "dip", "corruption": r["corruption"], "severity": r["severity"], "dip": flag,
                         **{k: r[key].get(k) for k in metrics}})
    return rows


def write_outputs(result: dict, out: str | Path) -> tuple[Path, Path]:
    """Write ``OUT/robustness.json`` and ``OUT/robustness.csv``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jpath, cpath = out / RESULT_FILE, out / CSV_FILE
    tmp = jpath.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    tmp.replace(jpath)
    tmp = cpath.with_suffix(".csv.tmp")
    tmp.write_text(csv_text(result), encoding="utf-8")
    tmp.replace(cpath)
    return jpath, cpath


def csv_text(result: dict) -> str:
    """The rows of :func:`table_rows` as CSV text (columns ``CSV_COLUMNS``)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(table_rows(result))
    return buf.getvalue()


def load_result(data: str | Path | bytes) -> dict:
    """A saved ``robustness.json`` (a path or its bytes), checked to be one.

    Raises
    ------
    InputError
        Not JSON, or not a robustness result (no ``kind``/``clean``/``rows``).
    """
    if isinstance(data, (str, Path)):
        p = Path(data)
        if not p.is_file():
            raise InputError(f"{p} not found; expected a robustness.json file")
        if p.stat().st_size > 16 << 20:
            raise InputError(f"{p.name} is larger than 16 MB; expected a robustness.json file")
        data = p.read_bytes()
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("the file is not valid JSON; expected a robustness.json file") from None
    if not isinstance(obj, dict) or obj.get("kind") != KIND or "clean" not in obj or "rows" not in obj:
        raise InputError("the file is not a robustness result; expected the robustness.json of a run")
    return obj


def markdown_table(result: dict) -> str:
    """The main table as markdown: one row per corruption, AUC / accuracy per severity, the clean row first."""
    sevs = result.get("severities") or sorted({r["severity"] for r in result["rows"]})
    head = "| corruption | " + " | ".join(f"sev {s}" for s in sevs) + " |"
    lines = [head, "|---|" + "---|" * len(sevs)]
    c = result["clean"]
    lines.append(f"| clean | {_cell(c)} |" + " |" * (len(sevs) - 1))
    by = {(r["corruption"], r["severity"]): r for r in result["rows"]}
    for name in dict.fromkeys(r["corruption"] for r in result["rows"]):
        cells = [_cell(by[(name, s)]) if (name, s) in by else "" for s in sevs]
        lines.append(f"| {INFO[name].label} | " + " | ".join(cells) + " |")
    dip = result.get("dip")
    if dip and dip.get("rows"):
        lines += ["", "| DIP front end (n = {}) | severity | without DIP | with DIP |".format(
            result["films"].get("dip_n")), "|---|---|---|---|"]
        if "clean_with" in dip:
            lines.append(f"| clean | - | {_cell(dip['clean_without'])} | {_cell(dip['clean_with'])} |")
        for r in dip["rows"]:
            lines.append(f"| {INFO[r['corruption']].label} | {r['severity']} | {_cell(r['without'])} | "
                         f"{_cell(r['with'])} |")
    return "\n".join(lines)


def _cell(m: dict) -> str:
    auc, acc = m.get("auc"), m.get("accuracy")
    a = "-" if auc is None else f"{auc:.3f}"
    b = "-" if acc is None else f"{acc:.3f}"
    return f"{a} / {b}"
