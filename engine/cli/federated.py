"""``inverse-studio federated``: the federated-learning demo on chest X-rays (Flower)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.cli.common import add_subparser, say
from engine.core.errors import InputError


def register(sub) -> None:  # noqa: ANN001
    p = add_subparser(sub, "federated", help="federated learning on chest X-rays: FedAvg vs centralised vs local")
    p.add_argument("--data", required=True, help="folder with NORMAL/ and PNEUMONIA/ images")
    p.add_argument("--out", required=True, help="run folder to write (summary.json, metrics.jsonl)")
    p.add_argument("--sites", type=int, default=4)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=1, help="local epochs per round")
    p.add_argument("--norm", default="all", choices=["bn", "gn", "fedbn", "all"])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--max-films", type=int, default=1600, help="subset of whole patients (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="2 rounds, 400 films, 32 px")
    p.set_defaults(func=_run)


def _run(args) -> int:  # noqa: ANN001
    from engine.federated.workflow import params_to_spec
    from engine.jobs import run_inline
    from engine.runs import RunStore

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} exists and is not empty; expected a new folder")
    params = {"data": str(args.data), "sites": args.sites, "rounds": args.rounds, "epochs": args.epochs,
              "norm": args.norm, "size": args.size, "max_films": args.max_films, "seed": args.seed}
    if args.quick:
        params.update(rounds=2, max_films=400, size=32)
    params_to_spec(params)  # bad input: exit 2 before writing anything
    run = RunStore.create_at(out, {"kind": "federated", "params": params})

    def show(i: int, row: dict, extra: dict) -> None:
        aucs = " ".join(f"{k[4:]}={v:.3f}" for k, v in row.items() if k.startswith("auc_"))
        say(f"{extra.get('series')} round {row.get('round')}: {aucs}")

    state, summary = run_inline(run, "cpu", on_publish=show)
    if state != "done":
        say(f"run {state}: {run.status().get('message', '')}")
        return 1
    print(json.dumps({"out": str(out), "wall_seconds": summary.get("wall_seconds"),
                      "table": summary.get("table")}, indent=1))
    return 0
