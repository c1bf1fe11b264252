"""Simulated hospitals: patient-disjoint, label-skewed splits of one folder, each with its own acquisition shift.

A site's data exist only inside :func:`load_site`: clients call it with their site id, and nothing else in
the federation (the server, the strategy) ever holds images or labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.errors import InputError
from engine.core.seeds import numpy_rng

#: per-site acquisition shift (engine.dip.corruptions name, severity); site k uses SHIFTS[k % len]
SHIFTS: tuple[tuple[str, int], ...] = (("defocus_blur", 1), ("gaussian_noise", 2), ("contrast", 3),
                                       ("shot_noise", 2), ("motion_blur", 1), ("brightness", 2))


@dataclass(frozen=True)
class FederationSpec:
    """What every site agrees on: the folder, the film size, the number of sites, the subset, the seed."""

    data: str
    sites: int = 4
    size: int = 64
    max_films: int | None = 1600
    test_fraction: float = 0.25
    seed: int = 0


def pneumonia_fractions(sites: int) -> np.ndarray:
    """Label skew: target pneumonia fraction per site, spread from 0.35 to 0.9."""
    return np.linspace(0.35, 0.9, sites) if sites > 1 else np.array([0.7])


def assign_patients(spec: FederationSpec) -> list[dict[str, list[int]]]:
    """Indices into the folder's listing, per site and split (``train``/``test``), disjoint by patient."""
    from engine.xray.data import list_dataset

    items = list_dataset(spec.data)
    if spec.sites < 1:
        raise InputError(f"sites must be at least 1; got {spec.sites}")
    rng = numpy_rng(spec.seed)
    groups: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(it.patient, []).append(i)
    keys = sorted(groups)
    rng.shuffle(keys)
    if spec.max_films:  # a subset of whole patients
        kept, n = [], 0
        for k in keys:
            if n >= spec.max_films:
                break
            kept.append(k)
            n += len(groups[k])
        keys = kept
    frac = pneumonia_fractions(spec.sites)
    pos = [k for k in keys if k.startswith("PNEUMONIA")]
    neg = [k for k in keys if not k.startswith("PNEUMONIA")]
    # share of each class per site so that site k's pneumonia fraction is about frac[k]
    npos, nneg = sum(len(groups[k]) for k in pos), sum(len(groups[k]) for k in neg)
    wpos = frac / frac.sum()
    wneg = (1 - frac) / (1 - frac).sum()
    out: list[list[str]] = [[] for _ in range(spec.sites)]
    for cls, w in ((pos, wpos), (neg, wneg)):
        cuts = np.concatenate([[0], np.cumsum(w)]) * sum(len(groups[k]) for k in cls)
        n = 0
        site = 0
        for k in cls:
            while site < spec.sites - 1 and n >= cuts[site + 1]:
                site += 1
            out[site].append(k)
            n += len(groups[k])
    del npos, nneg
    result = []
    for s, pats in enumerate(out):
        r = numpy_rng(spec.seed * 1000 + s)
        pats = sorted(pats)
        r.shuffle(pats)
        n_test = max(1, int(round(spec.test_fraction * len(pats)))) if len(pats) > 1 else 0
        test = sorted(i for k in pats[:n_test] for i in groups[k])
        train = sorted(i for k in pats[n_test:] for i in groups[k])
        if not train:
            raise InputError(f"site {s} has no training films; use fewer sites or more films")
        result.append({"train": train, "test": test})
    return result


_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def load_site(spec: FederationSpec, site: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Site ``site``'s films (float32 ``(N, 1, size, size)``, with its shift applied) and labels.

    Decoded once per process and kept (a Ray actor serves the same site over many rounds).
    """
    key = (spec, site, split)
    if key not in _CACHE:
        from engine.dip.corruptions import corrupt
        from engine.xray.data import list_dataset, load_uint8

        items = list_dataset(spec.data)
        idx = assign_patients(spec)[site][split]
        x8, y = load_uint8([items[i] for i in idx], spec.size)
        name, sev = SHIFTS[site % len(SHIFTS)]
        x = np.stack([corrupt(im.astype(np.float32) / 255.0, name, severity=sev, seed=spec.seed + 7919 * site + j)
                      for j, im in enumerate(x8)]) if len(x8) else np.zeros((0, spec.size, spec.size), np.float32)
        _CACHE[key] = (x[:, None].astype(np.float32), y)
    return _CACHE[key]


def site_summary(spec: FederationSpec) -> list[dict]:
    """Counts per site (no images): films, pneumonia fraction, shift."""
    from engine.xray.data import list_dataset

    items = list_dataset(spec.data)
    out = []
    for s, sp in enumerate(assign_patients(spec)):
        row = {"site": s, "shift": "{} {}".format(*SHIFTS[s % len(SHIFTS)])}
        for split, idx in sp.items():
            lab = [items[i].label for i in idx]
            row[f"{split}_films"] = len(lab)
            row[f"{split}_pneumonia"] = round(float(np.mean(lab)), 3) if lab else None
        out.append(row)
    return out


def folder_ok(path: str | Path) -> None:
    """Raise InputError unless ``path`` holds NORMAL/ and PNEUMONIA/ images."""
    from engine.xray.data import list_dataset

    list_dataset(path)
