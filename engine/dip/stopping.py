"""Early stopping from the variance of the reconstructions: ES-WMV and ES-EMV.

Wang, Li, Zhuang, Chen, Liang and Sun, "Early stopping for deep image prior", TMLR 2023.
A DIP run first fits the structure of the image, then the noise; the reconstructions move
least between the two phases, so the running variance of the last outputs has its minimum
near the PSNR peak. No reference image is needed.

* ES-WMV keeps the last ``W`` outputs and computes
  ``VAR_t = (1/W) sum_i mean((x_i - xbar)**2)`` over them; it tracks the minimum and stops
  when the minimum has not improved for ``P`` (patience) updates.
* ES-EMV replaces the window by exponential moving averages (``alpha``): O(1) image buffers.

Both keep the image given at the best iteration ``t*``: the answer is that image, not the last.
The window variance is kept incrementally: a running sum of the frames and of their mean
squares, so one update costs a few passes over one image whatever ``W`` is. Frames are
stored minus a shift that follows the window mean, and the sums are rebuilt from the ring
every ``W`` updates, so float32 rounding neither cancels nor drifts.
"""

from __future__ import annotations

import math

import torch


class _Detector:
    """What both detectors share: best variance, t*, the kept image, patience."""

    def __init__(self, patience: int) -> None:
        if patience < 1:
            raise ValueError(f"patience {patience}; expected >= 1")
        self.patience = int(patience)
        self.variance: float | None = None      # the latest value of the signal
        self.best_variance = math.inf
        self.best_iteration: int | None = None   # t*
        self.best_output: torch.Tensor | None = None
        self.last_iteration = 0
        self.stopped = False

    @property
    def patience_left(self) -> int:
        """Updates left before the detector fires (``patience`` until the signal exists)."""
        if self.best_iteration is None:
            return self.patience
        return max(0, self.patience - (self.last_iteration - self.best_iteration))

    def _track(self, var: float, iteration: int, keep: torch.Tensor) -> bool:
        self.variance = var
        if var < self.best_variance:
            self.best_variance = var
            self.best_iteration = iteration
            # copy into a persistent buffer: no allocation after the first call
            if self.best_output is None or self.best_output.shape != keep.shape:
                self.best_output = keep.detach().clone()
            else:
                self.best_output.copy_(keep.detach())
        if self.best_iteration is not None and iteration - self.best_iteration >= self.patience:
            self.stopped = True
        return self.stopped

    def _base_state(self) -> dict:
        return {"patience": self.patience, "variance": self.variance, "best_variance": self.best_variance,
                "best_iteration": self.best_iteration, "best_output": self.best_output,
                "last_iteration": self.last_iteration, "stopped": self.stopped}

    def _load_base(self, s: dict) -> None:
        self.patience = int(s["patience"])
        self.variance = s["variance"]
        self.best_variance = float(s["best_variance"])
        self.best_iteration = s["best_iteration"]
        self.best_output = s["best_output"]
        self.last_iteration = int(s["last_iteration"])
        self.stopped = bool(s["stopped"])


class WMV(_Detector):
    """ES-WMV: windowed moving variance with patience.

    Parameters
    ----------
    window : int
        ``W``, the number of outputs in the window (paper: 100).
    patience : int
        ``P``, updates without a new minimum before stopping (paper: 1000).

    Examples
    --------
    >>> es = WMV(window=100, patience=1000)
    >>> for t in range(1, T + 1):            # doctest: +SKIP
    ...     if es.update(x_t, t):             # x_t: the output of step t
    ...         break
    >>> es.best_iteration, es.best_output    # doctest: +SKIP
    """

    kind = "wmv"

    def __init__(self, *, window: int = 100, patience: int = 1000) -> None:
        super().__init__(patience)
        if window < 2:
            raise ValueError(f"window {window}; expected >= 2")
        self.window = int(window)
        self._ring: torch.Tensor | None = None   # (W, *shape) on the device of the outputs
        self._sq = [0.0] * self.window           # mean(x_i**2) of each frame in the ring
        self._sum: torch.Tensor | None = None    # sum of the frames in the ring
        self._shift: torch.Tensor | None = None  # subtracted from every frame (numerics)
        self._count = 0                          # frames pushed so far

    def update(self, x: torch.Tensor, iteration: int, *, keep: torch.Tensor | None = None) -> bool:
        """Push the output ``x`` of ``iteration``; return True when the detector fires.

        ``keep`` is the image remembered if this iteration becomes t* (default ``x``).
        """
        x = x.detach()
        if self._ring is None:
            self._ring = torch.zeros((self.window, *x.shape), dtype=torch.float32, device=x.device)
            self._sum = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
            self._shift = x.detach().float().clone()
        slot = self._count % self.window
        d = self._ring[slot]
        if self._count >= self.window:
            self._sum.sub_(d)
        # frames are stored minus a shift close to their mean: no cancellation in E[d^2] - E[d]^2
        torch.sub(x, self._shift, out=d)
        self._sum.add_(d)
        self._sq[slot] = float(d.square().mean(dtype=torch.float64))
        self._count += 1
        self.last_iteration = int(iteration)
        if self._count % self.window == 0:
            self._recentre()
        if self._count < self.window:
            return False
        mean_sq_of_mean = float((self._sum / self.window).square().mean(dtype=torch.float64))
        var = max(0.0, sum(self._sq) / self.window - mean_sq_of_mean)
        return self._track(var, int(iteration), x if keep is None else keep)

    def _recentre(self) -> None:
        """Every W updates: move the shift to the window mean and rebuild the sums exactly."""
        delta = self._ring.mean(dim=0)
        self._ring.sub_(delta)
        self._shift.add_(delta)
        torch.sum(self._ring, dim=0, out=self._sum)
        sq = self._ring.square().flatten(1).mean(dim=1, dtype=torch.float64)
        self._sq = [float(v) for v in sq]

    def state_dict(self) -> dict:
        s = self._base_state()
        s.update(kind=self.kind, window=self.window, ring=self._ring, sq=list(self._sq), sum=self._sum,
                 shift=self._shift, count=self._count)
        return s

    def load_state_dict(self, s: dict) -> None:
        self._load_base(s)
        self.window = int(s["window"])
        self._ring, self._sum, self._shift = s["ring"], s["sum"], s["shift"]
        self._sq = [float(v) for v in s["sq"]]
        self._count = int(s["count"])


class EMV(_Detector):
    """ES-EMV: exponential moving variance with patience (O(1) image buffers).

    ``mu_t = mu_{t-1} + alpha d``, ``v_t = (1 - alpha) (v_{t-1} + alpha mean(d**2))`` with
    ``d = x_t - mu_{t-1}``. The signal is tracked after a burn-in of ``ceil(1/alpha)``
    updates, when the averages have forgotten their start.

    Parameters
    ----------
    alpha : float
        Smoothing factor (paper: 0.1).
    patience : int
    """

    kind = "emv"

    def __init__(self, *, alpha: float = 0.1, patience: int = 1000) -> None:
        super().__init__(patience)
        if not 0 < alpha < 1:
            raise ValueError(f"alpha {alpha}; expected 0 < alpha < 1")
        self.alpha = float(alpha)
        self._mu: torch.Tensor | None = None
        self._v = 0.0
        self._count = 0

    @property
    def burn_in(self) -> int:
        return math.ceil(1 / self.alpha)

    def update(self, x: torch.Tensor, iteration: int, *, keep: torch.Tensor | None = None) -> bool:
        """Push the output ``x`` of ``iteration``; return True when the detector fires."""
        x = x.detach().float()
        self.last_iteration = int(iteration)
        self._count += 1
        if self._mu is None:
            self._mu = x.clone()
            return False
        d = x - self._mu
        self._v = (1 - self.alpha) * (self._v + self.alpha * float(d.square().mean()))
        self._mu.add_(d, alpha=self.alpha)
        if self._count <= self.burn_in:
            return False
        return self._track(self._v, int(iteration), x if keep is None else keep)

    def state_dict(self) -> dict:
        s = self._base_state()
        s.update(kind=self.kind, alpha=self.alpha, mu=self._mu, v=self._v, count=self._count)
        return s

    def load_state_dict(self, s: dict) -> None:
        self._load_base(s)
        self.alpha = float(s["alpha"])
        self._mu, self._v, self._count = s["mu"], float(s["v"]), int(s["count"])


def make_detector(kind: str, *, window: int = 100, patience: int = 1000,
                  alpha: float = 0.1) -> WMV | EMV | None:
    """``"wmv"`` -> :class:`WMV`, ``"emv"`` -> :class:`EMV`, ``"none"`` -> None."""
    if kind == "wmv":
        return WMV(window=window, patience=patience)
    if kind == "emv":
        return EMV(alpha=alpha, patience=patience)
    if kind in ("none", None):
        return None
    raise ValueError(f"unknown stopping rule {kind!r}; expected wmv, emv or none")
