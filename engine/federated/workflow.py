"""Job kind ``federated``: FedAvg (Flower) vs centralised vs local-only, x BN / GN / FedBN, live per-site AUC.

Params: ``data`` (folder with NORMAL/ and PNEUMONIA/), ``sites`` (4), ``rounds`` (5), ``epochs`` (1),
``norm`` (bn|gn|fedbn|all, default all), ``size`` (64), ``max_films`` (1600), ``seed`` (0),
``regimes`` (list, default all three). Published per round: ``auc_site<k>`` and ``auc_pooled`` with
``extra.series`` naming the curve (e.g. ``fedavg-bn``); metrics.jsonl rows carry ``series`` too.
"""

from __future__ import annotations

import os
import time
from typing import Any

from engine.core.errors import InputError
from engine.federated.sites import FederationSpec, folder_ok, site_summary
from engine.federated.train import NORMS, run_demo


def params_to_spec(p: dict) -> tuple[FederationSpec, list[str], int, int, tuple[str, ...]]:
    data = p.get("data")
    if not data:
        raise InputError("no data folder; expected a folder with NORMAL/ and PNEUMONIA/ images")
    folder_ok(data)
    sites, rounds, epochs, size = (int(p.get(k, d)) for k, d in
                                   (("sites", 4), ("rounds", 5), ("epochs", 1), ("size", 64)))
    if not 2 <= sites <= 8:
        raise InputError(f"sites must be between 2 and 8; got {sites}")
    if not 1 <= rounds <= 100 or not 1 <= epochs <= 20:
        raise InputError(f"rounds must be 1-100 and epochs 1-20; got {rounds} and {epochs}")
    if not 16 <= size <= 128:
        raise InputError(f"size must be between 16 and 128 px; got {size}")
    norm = p.get("norm", "all")
    norms = list(NORMS) if norm == "all" else [norm]
    if any(n not in NORMS for n in norms):
        raise InputError(f"unknown norm {norm!r}; expected bn, gn, fedbn or all")
    regimes = tuple(p.get("regimes") or ("fedavg", "centralised", "local"))
    mf = p.get("max_films", 1600)
    spec = FederationSpec(str(data), sites=sites, size=size, max_films=int(mf) if mf else None,
                          seed=int(p.get("seed", 0)))
    return spec, norms, rounds, epochs, regimes


def run(ctx: Any) -> dict:
    """Run the demo, publishing each finished round of each series."""
    spec, norms, rounds, epochs, regimes = params_to_spec(dict(ctx.params))
    sites = site_summary(spec)
    ctx.run.write_json("sites.json", {"sites": sites})
    step = 0

    def on_round(series: str, r: int, row: dict) -> None:
        nonlocal step
        step += 1
        ctx.publish(step, {**row, "round": r, "series": series, "kind": "round"}, series=series,
                    sites=spec.sites, rounds=rounds)

    summary = run_demo(spec, norms=norms, rounds=rounds, epochs=epochs, regimes=regimes,
                       on_round=on_round, check=ctx.check, seed=spec.seed)
    summary["sites"] = sites
    summary["machine"] = {"cpus": os.cpu_count(), "loadavg": list(os.getloadavg()), "time": time.time()}
    return summary
