"""The small network, local training, AUC, and the three regimes: FedAvg (Flower), centralised, local-only.

Normalisation: ``bn`` (BatchNorm, averaged like every weight), ``gn`` (GroupNorm) or ``fedbn``
(BatchNorm whose affine parameters and running statistics stay on each site and are never sent).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import torch
from torch import nn

from engine.core.errors import InputError
from engine.federated.sites import FederationSpec, load_site

NORMS = ("bn", "gn", "fedbn")
BINS = 200  # score histogram bins: the pooled AUC is computed from per-site histograms, not scores


def make_model(norm: str, seed: int = 0) -> nn.Module:
    """Four conv blocks (16-32-64-64) + global pooling + linear; ~70k parameters."""
    if norm not in NORMS:
        raise InputError(f"unknown normalisation {norm!r}; expected one of {', '.join(NORMS)}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c_in = 1
    for c in (16, 32, 64, 64):
        layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False),
                   nn.GroupNorm(8, c) if norm == "gn" else nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1))


def local_keys(model: nn.Module, norm: str) -> set[str]:
    """State-dict keys that never leave a site: the BN layers under FedBN, BN step counters always."""
    keys = {k for k in model.state_dict() if k.endswith("num_batches_tracked")}
    if norm == "fedbn":
        bn = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
        keys |= {k for k in model.state_dict() if any(k.startswith(b + ".") for b in bn)}
    return keys


def shared_state(model: nn.Module, norm: str) -> dict[str, np.ndarray]:
    skip = local_keys(model, norm)
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items() if k not in skip}


def train_epochs(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int, seed: int,
                 lr: float = 1e-3, batch: int = 32) -> float:
    """Adam on BCE with class-balanced weights; returns the last epoch's mean loss."""
    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).float()
    pos = float(yt.mean()) if len(yt) else 0.5
    pw = torch.tensor((1 - pos) / max(pos, 1e-3))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    loss_sum = 0.0
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        loss_sum, n = 0.0, 0
        for i in range(0, len(perm), batch):
            b = perm[i:i + batch]
            if len(b) < 2:
                continue
            opt.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(model(xt[b])[:, 0], yt[b], pos_weight=pw)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(b)
            n += len(b)
        loss_sum /= max(n, 1)
    return loss_sum


@torch.no_grad()
def scores(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    if not len(x):
        return np.zeros(0)
    return torch.sigmoid(model(torch.from_numpy(x))[:, 0]).numpy()


def auc(labels: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties count one half); NaN with one class only."""
    labels = np.asarray(labels)
    pos, neg = s[labels == 1], s[labels == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([neg, pos]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([neg, pos])[order]
    ranks[order] = np.arange(1, len(order) + 1)
    # average ranks over ties
    _, inv, cnt = np.unique(allv, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks[order])
    ranks[order] = (sums / cnt)[inv]
    return float((ranks[len(neg):].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def histograms(labels: np.ndarray, s: np.ndarray) -> tuple[list[int], list[int]]:
    """Per-class score histograms (BINS bins on [0, 1]): what a site shares for the pooled AUC."""
    b = np.clip((np.asarray(s) * BINS).astype(int), 0, BINS - 1)
    return (np.bincount(b[labels == 0], minlength=BINS).tolist(),
            np.bincount(b[labels == 1], minlength=BINS).tolist())


def auc_from_histograms(neg: np.ndarray, pos: np.ndarray) -> float:
    """AUC from summed per-class histograms (ties within a bin count one half)."""
    neg, pos = np.asarray(neg, float), np.asarray(pos, float)
    if neg.sum() == 0 or pos.sum() == 0:
        return float("nan")
    below = np.concatenate([[0], np.cumsum(neg)[:-1]])
    return float((pos * (below + 0.5 * neg)).sum() / (pos.sum() * neg.sum()))


def evaluate_site(model: nn.Module, spec: FederationSpec, site: int) -> dict:
    x, y = load_site(spec, site, "test")
    s = scores(model, x)
    hn, hp = histograms(y, s)
    return {"auc": auc(y, s), "neg": hn, "pos": hp, "n": int(len(y))}


def _round_rows(per_site: dict[int, dict]) -> dict[str, float]:
    row = {f"auc_site{s}": r["auc"] for s, r in sorted(per_site.items())}
    neg = np.sum([r["neg"] for r in per_site.values()], axis=0)
    pos = np.sum([r["pos"] for r in per_site.values()], axis=0)
    row["auc_pooled"] = auc_from_histograms(neg, pos)
    return row


# ----------------------------------------------------------------------------- baselines
OnRound = Callable[[int, dict], None]


def run_centralised(spec: FederationSpec, norm: str, rounds: int, epochs: int, on_round: OnRound,
                    seed: int = 0) -> dict:
    """The upper reference: all sites' training films pooled (what federation avoids), one model."""
    parts = [load_site(spec, s, "train") for s in range(spec.sites)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    model = make_model("bn" if norm == "fedbn" else norm, seed)
    row = {}
    for r in range(1, rounds + 1):
        train_epochs(model, x, y, epochs=epochs, seed=seed + r)
        row = _round_rows({s: evaluate_site(model, spec, s) for s in range(spec.sites)})
        on_round(r, row)
    return row


def run_local(spec: FederationSpec, norm: str, rounds: int, epochs: int, on_round: OnRound,
              seed: int = 0) -> dict:
    """Each site alone: its own model on its own films, evaluated on its own test films."""
    models = {s: make_model("bn" if norm == "fedbn" else norm, seed) for s in range(spec.sites)}
    row = {}
    for r in range(1, rounds + 1):
        res = {}
        for s, m in models.items():
            x, y = load_site(spec, s, "train")
            train_epochs(m, x, y, epochs=epochs, seed=seed + 100 * s + r)
            res[s] = evaluate_site(m, spec, s)
        row = _round_rows(res)
        on_round(r, row)
    return row


# ----------------------------------------------------------------------------- Flower
def _flwr():
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # offline: never post usage events
    import flwr  # noqa: F401

    return flwr


def make_client_app(spec: FederationSpec, norm: str, epochs: int, seed: int = 0):
    """The ClientApp: a site gets only its id (Flower's partition id) and loads its own films.

    It returns the weights (without local keys) and metrics: its AUC, and per-class score
    histograms for the pooled AUC; never images, labels or per-film scores. Under FedBN the BN
    layers are kept in the node's own ``context.state`` between rounds.
    """
    _flwr()
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    def _model(msg: Message, context) -> tuple[nn.Module, int]:  # noqa: ANN001
        torch.set_num_threads(1)
        site = int(context.node_config["partition-id"])
        model = make_model(norm, seed)
        state = model.state_dict()
        for k, v in msg.content["arrays"].to_torch_state_dict().items():
            state[k] = v.to(state[k].dtype)
        if "local" in context.state:  # FedBN: this site's own BN layers from the last round
            for k, v in context.state["local"].to_torch_state_dict().items():
                state[k] = v
        model.load_state_dict(state)
        return model, site

    def _keep_local(model: nn.Module, context) -> None:  # noqa: ANN001
        keys = local_keys(model, norm)
        context.state["local"] = ArrayRecord({k: v for k, v in model.state_dict().items() if k in keys})

    @app.train()
    def train(msg: Message, context) -> Message:  # noqa: ANN001
        model, site = _model(msg, context)
        x, y = load_site(spec, site, "train")
        rnd = int(msg.content["config"]["server-round"])
        loss = train_epochs(model, x, y, epochs=epochs, seed=seed + 100 * site + rnd)
        _keep_local(model, context)
        arrays = ArrayRecord({k: torch.from_numpy(v) for k, v in shared_state(model, norm).items()})
        metrics = MetricRecord({"loss": float(loss), "num-examples": int(len(y))})
        return Message(content=RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context) -> Message:  # noqa: ANN001
        model, site = _model(msg, context)
        r = evaluate_site(model, spec, site)
        a = r["auc"]
        metrics = MetricRecord({"site": site, "auc": -1.0 if np.isnan(a) else float(a),
                                "hist-neg": r["neg"], "hist-pos": r["pos"], "num-examples": max(r["n"], 1)})
        return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)

    return app


def make_server_app(norm: str, rounds: int, sites: int, on_round: OnRound, seed: int = 0,
                    record: dict | None = None):
    """The ServerApp: FedAvg over what clients send. It holds no data spec and no loader."""
    _flwr()
    from flwr.app import ArrayRecord, Context
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg

    class SiteFedAvg(FedAvg):
        """FedAvg that also reports each site's evaluation, round by round."""

        def aggregate_train(self, server_round, replies):  # noqa: ANN001, ANN201
            replies = list(replies)
            agg = super().aggregate_train(server_round, replies)
            if record is not None:  # what the server saw: the keys of every update (for the tests)
                record.setdefault("update_keys", []).append(
                    sorted({k for m in replies if not m.has_error() for k in m.content["arrays"].keys()}))
                if agg[0] is not None:
                    record["aggregate_keys"] = sorted(agg[0].keys())
            return agg

        def aggregate_evaluate(self, server_round, replies):  # noqa: ANN001, ANN201
            per_site = {}
            for m in replies:
                if m.has_error():
                    raise RuntimeError(f"a site failed: {m.error.reason}")
                mr = m.content["metrics"]
                a = float(mr["auc"])
                per_site[int(mr["site"])] = {"auc": float("nan") if a < 0 else a,
                                             "neg": list(mr["hist-neg"]), "pos": list(mr["hist-pos"])}
            on_round(server_round, _round_rows(per_site))
            return None

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        model = make_model(norm, seed)
        strategy = SiteFedAvg(min_train_nodes=sites, min_evaluate_nodes=sites, min_available_nodes=sites)
        arrays = ArrayRecord({k: torch.from_numpy(v) for k, v in shared_state(model, norm).items()})
        strategy.start(grid=grid, initial_arrays=arrays, num_rounds=rounds)

    return app


def ray_up(num_cpus: int = 2) -> None:
    """A local Ray for the simulation (never an existing cluster), kept for the next simulation."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR",
                 object_store_memory=200 * 1024 * 1024, log_to_driver=False)


def run_fedavg(spec: FederationSpec, norm: str, rounds: int, epochs: int, on_round: OnRound,
               seed: int = 0, record: dict | None = None, num_cpus: int = 2) -> dict:
    """FedAvg (or FedBN) through Flower's simulation engine, sites as Ray actors."""
    _flwr()
    from flwr.simulation import run_simulation

    ray_up(num_cpus)
    last: dict = {}

    def keep(r: int, row: dict) -> None:
        last.clear()
        last.update(row)
        on_round(r, row)

    run_simulation(server_app=make_server_app(norm, rounds, spec.sites, keep, seed, record),
                   client_app=make_client_app(spec, norm, epochs, seed), num_supernodes=spec.sites,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}})
    if len(last) == 0:
        raise RuntimeError("the simulation ended without a single round")
    return dict(last)


REGIMES = {"fedavg": run_fedavg, "centralised": run_centralised, "local": run_local}


def run_demo(spec: FederationSpec, *, norms: list[str], rounds: int, epochs: int = 1,
             regimes: tuple[str, ...] = ("fedavg", "centralised", "local"),
             on_round: Callable[[str, int, dict], None] | None = None, check: Callable[[], None] | None = None,
             seed: int = 0) -> dict:
    """Every regime x normalisation; returns the summary (the table)."""
    t0 = time.time()
    table = []
    for norm in norms:
        for regime in regimes:
            if regime != "fedavg" and norm == "fedbn":
                continue  # FedBN is a federated scheme; its baselines are the BN ones
            label = f"{'fedbn' if norm == 'fedbn' else regime}-{norm}" if norm != "fedbn" else "fedavg-fedbn"
            t1 = time.time()

            def cb(r: int, row: dict, _l: str = label) -> None:
                if on_round:
                    on_round(_l, r, row)
                if check:
                    check()

            final = REGIMES[regime](spec, norm, rounds, epochs, cb, seed=seed)
            table.append({"regime": regime, "norm": norm, "label": label, **final,
                          "seconds": round(time.time() - t1, 1)})
    return {"spec": asdict(spec), "rounds": rounds, "epochs_per_round": epochs, "table": table,
            "wall_seconds": round(time.time() - t0, 1)}
