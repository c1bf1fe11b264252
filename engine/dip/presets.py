"""Named DIP recipes: network, code, jitter, optimiser schedule, early stopping and budget.

=============  ===========================================================================
preset         what it is for
=============  ===========================================================================
classic        the original recipe of Ulyanov et al. (GPU default); exact, for reference
cpu            tuned to restore a 256^2 RGB image on a 2-core CPU in about two minutes
fast-preview   a quick look (a few hundred small steps) at any size
deep-decoder   Heckel and Hand's under-parameterised decoder, no jitter
=============  ===========================================================================

How a preset picks W, P and the budget: the patience ``P`` must be long enough that the
variance minimum is not declared on a plateau, and the budget must reach ``t* + P``, where
``t*`` is the iteration of the PSNR peak the recipe usually reaches. The classic recipe peaks
after about 1,000-1,700 iterations at sigma = 25/255, so it keeps the paper's W = 100,
P = 1000 and a budget of 3,000.

The cpu preset is bound by time instead: its budget (640 iterations) is what one CPU core
runs in about two minutes at 256x256 (bench/results/cpu_preset.json). Its W = 50, P = 75 and
output EMA 0.95 come from bench/es_gap.py, which records the curves of the preset on 36 dev
cases (128x128 crops of three Kodak images, four noise types, three levels; seed 0) and
replays the detector on them (bench/results/es_gap.json): the ES gap, the peak PSNR of the
returned image's own curve minus the PSNR at ``t*``, is 0.15 dB mean / 0.46 dB worst at
level 3 and 0.13 / 0.65 dB over all levels, against 1.56 / 3.12 and 1.87 / 8.82 dB for the
previous W = 100, P = 200, EMA 0.99. Most of that came from the average, not the detector:
an EMA of 0.99 lags about 100 iterations, so at ``t*`` it had not caught up with the raw
output's peak; a shorter window puts ``t*`` nearer that peak. On the dev cases ``t*`` falls at
52-185 and every run ends by iteration 260, well inside the budget, and the gaps are the same
for any P from 50 to 300. A longer patience is worse, not safer: from about P = 400 the
detector reaches a later, lower variance minimum while the network fits the noise. The
images the preset is judged on are other images of the same set, and the window and
patience count iterations, so larger images (whose minimum comes later) may need a rerun of
the benchmark. For a run that must reach ``t* + P``, pass a larger ``max_iters`` (the
workflow's ``max_iters`` parameter).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from engine.core.errors import InputError


@dataclass(frozen=True)
class Preset:
    """One recipe. All fields are plain values, so ``asdict`` gives a JSON-able record.

    Attributes
    ----------
    net : {"skip", "deep_decoder"}
    net_kwargs : dict
        For ``skip``: ``channels`` (per level, finest first), ``skip`` (channels of the skip
        branches), ``upsample``, ``pad``. For ``deep_decoder``: ``channels``, ``levels``.
    z_channels, z_scale : code ``z ~ U(0, z_scale)`` with ``z_channels`` channels.
    sigma_reg : dict
        Std of the jitter ``N(0, sigma_reg)`` added to ``z`` every step, per task key
        (``denoise``, ``inpaint``, ``sr2``, ``sr4``, ``sr8``, ``deblur``, ``jpeg``).
    lr, lr_schedule, lr_min, lr_horizon : Adam learning rate; ``constant`` or ``cosine``
        (from ``lr`` down to ``lr * lr_min`` over ``lr_horizon`` iterations, then flat).
    ema : float
        Exponential average of the outputs (``out = ema*out + (1-ema)*net(z)``); 0 = off.
        The displayed and returned image is the average when it is on.
    window, patience, alpha : ES-WMV window ``W``, patience ``P`` (both detectors), ES-EMV alpha.
    max_iters : dict
        Budget per task key.
    """

    name: str
    description: str
    net: str = "skip"
    net_kwargs: dict = field(default_factory=dict)
    z_channels: int = 32
    z_scale: float = 0.1
    sigma_reg: dict = field(default_factory=dict)
    lr: float = 0.01
    lr_schedule: str = "constant"
    lr_min: float = 1.0
    lr_horizon: int = 1
    ema: float = 0.0
    window: int = 100
    patience: int = 1000
    alpha: float = 0.1
    max_iters: dict = field(default_factory=dict)
    loss: str = "mse"

    def lr_at(self, iteration: int) -> float:
        """Learning rate of step ``iteration`` (1-based); a pure function, so resume is exact."""
        if self.lr_schedule == "constant":
            return self.lr
        if self.lr_schedule == "cosine":
            f = min(max(iteration - 1, 0), self.lr_horizon) / max(1, self.lr_horizon)
            return self.lr * (self.lr_min + (1 - self.lr_min) * 0.5 * (1 + math.cos(math.pi * f)))
        raise ValueError(f"unknown lr schedule {self.lr_schedule!r}")

    def jitter(self, task_key: str) -> float:
        return float(self.sigma_reg.get(task_key, self.sigma_reg.get("default", 0.0)))

    def budget(self, task_key: str) -> int:
        return int(self.max_iters.get(task_key, self.max_iters.get("default", 3000)))

    def to_dict(self) -> dict:
        return asdict(self)


def task_key(task: str, *, factor: int = 4) -> str:
    """The key of ``task`` in the per-task tables (``sr`` carries its factor: ``sr4``)."""
    return f"sr{int(factor)}" if task == "sr" else task


_CLASSIC = Preset(
    name="classic",
    description=("Original DIP: skip net 5 levels x 128 channels, 4-channel skips (2.2 M parameters); "
                 "z 32 ch ~ U(0, 0.1) jittered by N(0, sigma_reg) each step; Adam lr 0.01 constant; MSE; "
                 "ES-WMV W=100, P=1000; 3000 iterations for denoising."),
    net="skip",
    net_kwargs={"channels": (128,) * 5, "skip": 4, "upsample": "bilinear", "pad": "reflection"},
    sigma_reg={"denoise": 1 / 30, "jpeg": 1 / 30, "inpaint": 0.03, "sr2": 0.03, "sr4": 0.03, "sr8": 0.05,
               "deblur": 0.03},
    lr=0.01,
    window=100, patience=1000,
    max_iters={"denoise": 3000, "jpeg": 3000, "inpaint": 5000, "sr2": 2000, "sr4": 2000, "sr8": 2000,
               "deblur": 3000},
)

# Network, optimiser and budget tuned with bench/cpu_preset.py (bench/results/cpu_preset*.json);
# window, patience and output EMA with bench/es_gap.py (bench/results/es_gap.json, checked by
# tests/dip/test_presets.py).
_CPU = Preset(
    name="cpu",
    description=("Light skip net for CPUs: 5 levels with 16, 32, 64, 64, 64 channels (finest first), "
                 "4-channel skips, zero padding, nearest upsampling (0.38 M parameters, about 1/14 of the "
                 "classic net's time per step on one core); z 32 ch ~ U(0, 0.1), no jitter for denoising and JPEG "
                 "(it slows the fit too much for a short run), the classic jitter for the other tasks; "
                 "Adam lr 0.01 constant; MSE; the output is an exponential average of the network outputs "
                 "(0.95); ES-WMV W=50, P=75; 640 iterations (under 2 minutes for 256x256 RGB on one core)."),
    net="skip",
    net_kwargs={"channels": (16, 32, 64, 64, 64), "skip": 4, "upsample": "nearest", "pad": "zero"},
    sigma_reg={**_CLASSIC.sigma_reg, "denoise": 0.0, "jpeg": 0.0},
    lr=0.01,
    ema=0.95,
    window=50, patience=75,
    max_iters={"default": 640},
)

_FAST = Preset(
    name="fast-preview",
    description=("Quick look: skip net 5 levels x 8 channels, reflection padding, bilinear upsampling; "
                 "no jitter for denoising and JPEG; Adam lr 0.01 constant; output EMA 0.95; "
                 "ES-WMV W=50, P=100; 400 iterations."),
    net="skip",
    net_kwargs={"channels": (8,) * 5, "skip": 4, "upsample": "bilinear", "pad": "reflection"},
    sigma_reg={**_CLASSIC.sigma_reg, "denoise": 0.0, "jpeg": 0.0},
    lr=0.01,
    ema=0.95, window=50, patience=100,
    max_iters={"default": 400},
)

_DD = Preset(
    name="deep-decoder",
    description=("Deep decoder (Heckel & Hand 2019): 5 upsampling layers of 64 channels, 1x1 convolutions, "
                 "code 64 ch ~ U(0, 0.1) at 1/32 of the image, no jitter; Adam lr 0.01 constant; "
                 "ES-WMV W=100, P=500; 3000 iterations."),
    net="deep_decoder",
    net_kwargs={"channels": 64, "levels": 5},
    z_channels=64,
    sigma_reg={"default": 0.0},
    lr=0.01,
    window=100, patience=500,
    max_iters={"default": 3000},
)

PRESETS: dict[str, Preset] = {p.name: p for p in (_CPU, _CLASSIC, _FAST, _DD)}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str | Preset, **overrides) -> Preset:
    """The preset ``name``, with fields replaced by ``overrides`` (e.g. ``lr=0.02``)."""
    if isinstance(name, Preset):
        p = name
    else:
        if name not in PRESETS:
            raise InputError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
        p = PRESETS[name]
    return replace(p, **overrides) if overrides else p


def default_preset(device) -> str:
    """``"classic"`` on a CUDA device, ``"cpu"`` anywhere else."""
    return "classic" if str(getattr(device, "type", device)).startswith("cuda") else "cpu"
