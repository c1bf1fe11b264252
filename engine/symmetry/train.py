"""Train the symmetry-breaking pair of U-Nets and build the 4 x 2 error table.

For each symmetry setting (none, flip, shift, shift+flip) two :class:`SmallUNet` learn ``x`` from
``|F x|`` on the same generated objects: one on the raw targets, one on the targets mapped to their
class representatives (:func:`engine.symmetry.data.canonicalize`, the symmetry-breaking restriction).
Both are judged the same way, by the relative error modulo the setting's symmetries
(:func:`error_modulo`): a network that returns any valid copy of the truth scores zero, so the table
measures what each network can learn, not which copy it picked.

The weights and the table are shipped in ``assets/symmetry/`` so the page is instant; retraining::

    python -m engine.symmetry.train --out assets/symmetry          # about 10-20 minutes on 2 CPU cores
    python -m engine.symmetry.train --out /tmp/sym --quick          # a 1-minute smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.core.errors import InputError
from engine.symmetry.data import GROUPS, SETTINGS, DataConfig, check_setting, flip, make_split
from engine.symmetry.model import SmallUNet, parameter_count

#: where the shipped weights and table live
ASSETS = Path(__file__).resolve().parents[2] / "assets" / "symmetry"
WEIGHTS = "unets.pt"
TABLE = "table.json"
#: Tayal et al. 2020, Table 1 (test error), as quoted for the shift settings: (without, with) restriction
PAPER = {"shift": (0.249, 0.102), "shift+flip": (0.248, 0.161)}


@dataclass(frozen=True)
class TrainConfig:
    """Sizes and optimiser settings of one training run (both networks of every setting).

    Attributes
    ----------
    n_train, n_test : generated objects per split
    epochs, batch, lr : Adam with a cosine decay to zero over ``epochs``
    width, bottleneck : the U-Net's first-level channels and dense width
    seed : one seed for the data, the initial weights and the batch order
    data : sizes of the generated objects
    """

    n_train: int = 3000
    n_test: int = 500
    epochs: int = 12
    batch: int = 64
    lr: float = 2e-3
    width: int = 8
    bottleneck: int = 64
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        for name in ("n_train", "n_test", "epochs", "batch"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be a positive number, not {getattr(self, name)}")
        if not self.lr > 0:
            raise InputError(f"lr must be positive, not {self.lr}")


def key(setting: str, restricted: bool) -> str:
    """The name of one network: ``"shift/restricted"`` or ``"shift/plain"``."""
    return f"{check_setting(setting)}/{'restricted' if restricted else 'plain'}"


def error_modulo(pred: np.ndarray, truth: np.ndarray, setting: str) -> np.ndarray:
    """Relative error ``min_g ||pred - g(truth)|| / ||truth||`` over the setting's symmetries ``g``.

    ``shift`` ranges over every circular shift (through one FFT cross-correlation per image, so it is
    exact and cheap); ``flip`` adds the flipped truth. Shapes ``(n, H, W)`` (or one ``(H, W)``).
    """
    p = np.asarray(pred, np.float64)
    t = np.asarray(truth, np.float64)
    if p.shape != t.shape:
        raise InputError(f"prediction shape {p.shape} differs from the truth's {t.shape}")
    single = p.ndim == 2
    p, t = (p[None], t[None]) if single else (p, t)
    group = GROUPS[check_setting(setting)]
    pp = (p ** 2).sum(axis=(-2, -1))
    tt = (t ** 2).sum(axis=(-2, -1))
    best = np.full(p.shape[0], np.inf)
    for cand in (t, flip(t)) if "flip" in group else (t,):
        if "shift" in group:
            # <p, shift(c, s)> for every s at once: the circular cross-correlation
            corr = np.fft.ifft2(np.fft.fft2(p) * np.conj(np.fft.fft2(cand))).real.max(axis=(-2, -1))
        else:
            corr = (p * cand).sum(axis=(-2, -1))
        best = np.minimum(best, pp + tt - 2 * corr)
    err = np.sqrt(np.maximum(best, 0.0)) / np.sqrt(np.maximum(tt, 1e-12))
    return err[0] if single else err


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[:, None]


def train_net(inputs: np.ndarray, targets: np.ndarray, *, config: TrainConfig,
              callback: Callable[[dict], None] | None = None) -> SmallUNet:
    """Fit one U-Net from ``inputs`` (network inputs) to ``targets`` with MSE; returns it in eval mode.

    ``callback`` observes ``{"epoch", "epochs", "loss"}`` after every epoch.
    """
    torch.manual_seed(config.seed)
    net = SmallUNet(config.data.canvas, config.width, config.bottleneck)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    x, y = _tensor(inputs), _tensor(targets)
    gen = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, config.epochs + 1):
        net.train()
        order = torch.randperm(x.shape[0], generator=gen)
        total = 0.0
        for i in range(0, x.shape[0], config.batch):
            idx = order[i:i + config.batch]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
        sched.step()
        if callback is not None:
            callback({"epoch": epoch, "epochs": config.epochs, "loss": total / x.shape[0]})
    return net.eval()


@torch.no_grad()
def predict(net: SmallUNet, inputs: np.ndarray, *, batch: int = 256) -> np.ndarray:
    """The network's images for ``inputs`` ``(n, H, W)``, as ``(n, H, W)`` float32."""
    x = _tensor(inputs)
    out = [net(x[i:i + batch])[:, 0] for i in range(0, x.shape[0], batch)]
    return torch.cat(out).numpy()


def train_table(*, config: TrainConfig | None = None, settings: tuple[str, ...] = SETTINGS,
                callback: Callable[[dict], None] | None = None) -> tuple[dict, dict[str, SmallUNet]]:
    """Train both networks of each setting; return the table document and the networks by :func:`key`.

    ``callback`` observes ``{"network", "epoch", "epochs", "loss"}``. The table holds, per network,
    the mean and median test error modulo the symmetries, the training loss and the wall time.
    """
    cfg = config or TrainConfig()
    nets: dict[str, SmallUNet] = {}
    rows: dict[str, dict] = {}
    t_all = time.perf_counter()
    for setting in settings:
        for restricted in (False, True):
            name = key(setting, restricted)
            x_tr, y_tr, _ = make_split(cfg.n_train, setting, restricted=restricted, config=cfg.data,
                                       seed=cfg.seed, split=0)
            x_te, _, truth_te = make_split(cfg.n_test, setting, restricted=False, config=cfg.data,
                                           seed=cfg.seed, split=1)
            losses: list[float] = []

            def observe(ev: dict, name: str = name, losses: list[float] = losses) -> None:
                losses.append(ev["loss"])
                if callback is not None:
                    callback({"network": name, **ev})

            t0 = time.perf_counter()
            net = train_net(x_tr, y_tr, config=cfg, callback=observe)
            wall = time.perf_counter() - t0
            err = error_modulo(predict(net, x_te), truth_te, setting)
            nets[name] = net
            rows[name] = {"setting": setting, "restricted": restricted, "test_error_mean": round(float(err.mean()), 4),
                          "test_error_median": round(float(np.median(err)), 4), "final_train_loss": losses[-1],
                          "train_seconds": round(wall, 1)}
    doc = {
        "format": 1, "config": {**asdict(cfg)}, "parameters_per_net": parameter_count(next(iter(nets.values()))),
        "error": "relative L2 error modulo the setting's symmetries, on the test split (objects never trained on)",
        "rows": rows, "paper": {k: {"plain": v[0], "restricted": v[1]} for k, v in PAPER.items()},
        "wall_seconds": round(time.perf_counter() - t_all, 1),
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "loadavg_end": [round(v, 2) for v in os.getloadavg()]},
    }
    return doc, nets


def save(folder: Path, doc: dict, nets: dict[str, SmallUNet]) -> None:
    """Write ``unets.pt`` (state dicts only) and ``table.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: n.state_dict() for k, n in nets.items()}, folder / WEIGHTS)
    (folder / TABLE).write_text(json.dumps(doc, indent=1), encoding="utf-8")


def load(folder: Path = ASSETS) -> tuple[dict, dict[str, SmallUNet]]:
    """The shipped (or a retrained) table and networks; an InputError when they are missing."""
    folder = Path(folder)
    if not (folder / TABLE).is_file() or not (folder / WEIGHTS).is_file():
        raise InputError(f"no trained symmetry networks in {folder.name}/; run python -m engine.symmetry.train")
    doc = json.loads((folder / TABLE).read_text(encoding="utf-8"))
    states = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
    c = doc["config"]
    nets = {}
    for name, state in states.items():
        net = SmallUNet(c["data"]["canvas"], c["width"], c["bottleneck"])
        net.load_state_dict(state)
        nets[name] = net.eval()
    return doc, nets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ASSETS)
    ap.add_argument("--quick", action="store_true", help="600 objects, 4 epochs: a smoke run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = TrainConfig(n_train=600, n_test=200, epochs=4, seed=a.seed) if a.quick else TrainConfig(seed=a.seed)

    def show(ev: dict) -> None:
        if ev["epoch"] == ev["epochs"] or ev["epoch"] % 5 == 0:
            print(f"{ev['network']}: epoch {ev['epoch']}/{ev['epochs']} loss {ev['loss']:.5f}", flush=True)

    doc, nets = train_table(config=cfg, callback=show)
    save(a.out, doc, nets)
    for name, r in doc["rows"].items():
        print(f"{name:24s} test error {r['test_error_mean']:.3f} (median {r['test_error_median']:.3f})")
    print(f"wall {doc['wall_seconds']} s; written to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
