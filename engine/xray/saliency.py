"""Saliency maps for image classifiers, and the model-randomisation sanity check.

Methods (``METHODS``): Grad-CAM (Selvaraju et al., ICCV 2017; the default), Grad-CAM++ (Chattopadhay
et al., WACV 2018), Integrated Gradients (Sundararajan et al., ICML 2017) and Occlusion (Zeiler &
Fergus, ECCV 2014). Every method explains a *score* of one target class: its log-odds under the
softmax (``z_t - logsumexp(z_others)``; for two classes the logit difference), or the raw output
column for multi-label (sigmoid) models. Guided Backprop is deliberately absent: it fails the
model-randomisation test of Adebayo et al. (NeurIPS 2018), which :func:`sanity_check` runs.

Every method is a :class:`SaliencyMethod` that maps a batch ``(N, C, H, W)`` to ``N`` maps. The
class-activation methods share :class:`CAM` and differ only in :meth:`CAM.weights`, as in
pytorch-grad-cam. Maps are returned at their true resolution (the feature grid for Grad-CAM, the
patch grid for Occlusion, the input grid for IG) plus an upsampled copy for overlays.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from engine.core.colors import blend, colorize, ramp
from engine.core.errors import InputError

METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcampp": "Grad-CAM++",
    "ig": "Integrated Gradients",
    "occlusion": "Occlusion",
}

Target = int | Sequence[int]


@dataclass
class SaliencyMap:
    """One saliency map.

    Attributes
    ----------
    method : key of :data:`METHODS`.
    target : class index explained.
    map : float32 map at the method's true resolution (e.g. 10x10 for Grad-CAM).
    upsampled : float32 map resized to ``out_shape`` (bilinear), for overlays.
    vmin, vmax : value range for the colour legend (symmetric about 0 when ``signed``; for IG clipped
        at the 99.5th percentile of |value|, so a few pixels lie outside it).
    signed : True when negative values mean evidence against the target (IG, Occlusion).
    grid : human-readable source of the resolution, e.g. "10x10 feature map of features.3".
    """

    method: str
    target: int
    map: np.ndarray = field(repr=False)
    upsampled: np.ndarray = field(repr=False)
    vmin: float
    vmax: float
    signed: bool
    grid: str


@dataclass
class SanityResult:
    """Result of :func:`sanity_check`: maps of the trained and the randomised model and their similarity.

    ``spearman`` is the rank correlation of the two maps at true resolution (of absolute values for
    signed maps); near 1 means the method ignores the weights (it fails the check), near 0 passes.
    ``cascade`` lists (layer name, rank correlation) after randomising each layer from the top down.
    """

    original: SaliencyMap
    randomized: SaliencyMap
    spearman: float
    randomized_layers: list[str]
    cascade: list[tuple[str, float]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ scores
def target_score(logits: torch.Tensor, target: int, multilabel: bool = False) -> torch.Tensor:
    """Per-sample score of class ``target``: softmax log-odds, or the raw column when multi-label.

    A single-column output is read as the logit of class 1 (sigmoid), so target 0 gives its negative.
    """
    if logits.ndim != 2:
        raise InputError(f"model output has shape {tuple(logits.shape)}; expected (batch, classes)")
    c = logits.shape[1]
    if c == 1:
        return logits[:, 0] if target == 1 else -logits[:, 0]
    if not 0 <= target < c:
        raise InputError(f"target class {target} is out of range; the model has {c} outputs")
    if multilabel:
        return logits[:, target]
    others = torch.cat([logits[:, :target], logits[:, target + 1 :]], 1)
    return logits[:, target] - torch.logsumexp(others, 1)


def _targets(target: Target, n: int) -> list[int]:
    """One class index per sample: an int is used for all of them."""
    if isinstance(target, (int, np.integer)):
        return [int(target)] * n
    ts = [int(t) for t in target]
    if len(ts) != n:
        raise InputError(f"{len(ts)} targets for a batch of {n} images; give one per image or one int")
    return ts


def _scores(logits: torch.Tensor, targets: list[int], multilabel: bool) -> torch.Tensor:
    """:func:`target_score` of row ``i`` for class ``targets[i]`` (one call per distinct class)."""
    first = targets[0]
    if all(t == first for t in targets):
        return target_score(logits, first, multilabel)
    out = torch.empty(logits.shape[0], dtype=logits.dtype, device=logits.device)
    for t in sorted(set(targets)):
        rows = torch.tensor([i for i, u in enumerate(targets) if u == t], device=logits.device)
        out = out.index_copy(0, rows, target_score(logits[rows], t, multilabel))
    return out


def upsample(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D map to ``shape`` (cells aligned to the image, not to its corners)."""
    if m.shape == tuple(shape):
        return m.astype(np.float32, copy=False)
    t = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None, None]
    return F.interpolate(t, size=tuple(shape), mode="bilinear", align_corners=False)[0, 0].numpy()


# ----------------------------------------------------------------------------------------- methods
class SaliencyMethod:
    """A saliency method bound to a model: :meth:`attribute` gives raw maps, calling it gives
    :class:`SaliencyMap` objects.

    Subclasses set ``key`` (a :data:`METHODS` key) and ``signed`` and implement :meth:`attribute`;
    they may refine :meth:`overlay_map`, :meth:`legend` and :meth:`describe`.
    """

    key: ClassVar[str] = ""
    signed: ClassVar[bool] = False

    def __init__(self, model: nn.Module, *, multilabel: bool = False) -> None:
        self.model = model
        self.multilabel = multilabel

    def score(self, logits: torch.Tensor, targets: list[int]) -> torch.Tensor:
        """Per-sample score being explained (see :func:`target_score`)."""
        return _scores(logits, targets, self.multilabel)

    def attribute(self, x: torch.Tensor, target: Target = 1) -> np.ndarray:
        """Maps of a batch ``x`` (N, C, H, W) at the method's own resolution, float32 ``(N, h, w)``."""
        raise NotImplementedError

    def overlay_map(self, m: np.ndarray, input_shape: tuple[int, int], out_shape: tuple[int, int]) -> np.ndarray:
        """The map drawn over the image, at ``out_shape``."""
        return upsample(m, out_shape)

    def legend(self, m: np.ndarray) -> tuple[float, float]:
        """(vmin, vmax) of the colour legend."""
        if self.signed:
            r = float(max(np.abs(m).max(), 1e-12))
            return -r, r
        return 0.0, float(max(m.max(), 1e-12))

    def describe(self, m: np.ndarray) -> str:
        """Where the map's resolution comes from, for captions."""
        return f"{m.shape[0]}x{m.shape[1]} map"

    def __call__(self, x: torch.Tensor, target: Target = 1, *,
                 out_shape: tuple[int, int] | None = None) -> list[SaliencyMap]:
        """One :class:`SaliencyMap` per image of ``x`` (N, C, H, W); ``out_shape`` defaults to (H, W)."""
        if x.ndim != 4:
            raise InputError(f"saliency needs images as an (N, C, H, W) tensor; got {tuple(x.shape)}")
        targets = _targets(target, x.shape[0])
        maps = self.attribute(x, targets)
        in_shape = tuple(x.shape[2:])
        out_shape = tuple(out_shape or in_shape)
        out = []
        for m, t in zip(maps, targets):
            vmin, vmax = self.legend(m)
            up = self.overlay_map(m, in_shape, out_shape)
            out.append(SaliencyMap(self.key, int(t), m, up.astype(np.float32), vmin, vmax, self.signed,
                                   self.describe(m)))
        return out


def _module_name(model: nn.Module, layer: nn.Module | str | None) -> str:
    if isinstance(layer, str):
        if layer not in dict(model.named_modules()):
            raise InputError(f"layer {layer!r} is not in the model")
        return layer
    if layer is None:
        layer = getattr(model, "cam_layer", None)
        if layer is None:
            raise InputError(
                "Grad-CAM needs a convolutional layer to hook; this model names none (try ig or occlusion)"
            )
    for name, m in model.named_modules():
        if m is layer:
            return name
    raise InputError("the Grad-CAM layer is not part of the model")


class CAM(SaliencyMethod):
    """Class activation map: ``relu(sum_k w_k A_k)`` over the channels ``A_k`` of one layer.

    Subclasses choose the channel weights from the activations and the gradients of the score with
    respect to them (:meth:`weights`). ``layer`` is a module of the model or its name (default
    ``model.cam_layer``).
    """

    def __init__(self, model: nn.Module, layer: nn.Module | str | None = None, *,
                 multilabel: bool = False) -> None:
        super().__init__(model, multilabel=multilabel)
        self.layer = _module_name(model, layer)

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """Channel weights ``(N, K)`` from activations and gradients ``(N, K, h, w)``."""
        raise NotImplementedError

    def activations_and_gradients(self, x: torch.Tensor, targets: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The hooked layer's output and the score's gradient with respect to it, both (N, K, h, w).

        The hook keeps the layer's own output and passes a clone downstream, so an in-place ReLU after
        the hooked layer cannot overwrite the activations we differentiate with respect to.
        """
        store: dict[str, torch.Tensor] = {}
        mod = dict(self.model.named_modules())[self.layer]

        def hook(_m: nn.Module, _inp: tuple, out: torch.Tensor) -> torch.Tensor:
            store["a"] = out
            return out.clone()

        x = x.detach().requires_grad_(False)
        with torch.enable_grad():
            h = mod.register_forward_hook(hook)
            try:
                z = self.model(x)
            finally:
                h.remove()
            if "a" not in store or store["a"].ndim != 4:
                raise InputError(f"layer {self.layer!r} did not give a (batch, channels, h, w) feature map")
            # samples are independent in eval mode, so the gradient of the sum is each one's own
            (g,) = torch.autograd.grad(self.score(z, targets).sum(), store["a"])
        return store["a"].detach(), g.detach()

    def attribute(self, x: torch.Tensor, target: Target = 1) -> np.ndarray:
        self.model.eval()
        a, g = self.activations_and_gradients(x, _targets(target, x.shape[0]))
        w = self.weights(a, g)
        cam = F.relu((w[:, :, None, None] * a).sum(1))
        return cam.numpy().astype(np.float32)

    def overlay_map(self, m: np.ndarray, input_shape: tuple[int, int], out_shape: tuple[int, int]) -> np.ndarray:
        return np.maximum(upsample(m, out_shape), 0)

    def describe(self, m: np.ndarray) -> str:
        return f"{m.shape[0]}x{m.shape[1]} feature map of {self.layer}"


class GradCAM(CAM):
    """Grad-CAM: each channel weighted by its spatially averaged gradient."""

    key = "gradcam"

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return gradients.mean(dim=(2, 3))


class GradCAMPlusPlus(CAM):
    """Grad-CAM++: positive gradients weighted with the second/third-order terms of Chattopadhay et al.
    (exponential-score form)."""

    key = "gradcampp"

    def weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        g2, g3 = gradients**2, gradients**3
        denom = 2 * g2 + activations.sum(dim=(2, 3), keepdim=True) * g3
        alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
        return (alpha * F.relu(gradients)).sum(dim=(2, 3))


class IntegratedGradients(SaliencyMethod):
    """Integrated Gradients summed over input channels, (H, W) per image, signed.

    Riemann midpoint sum of ``steps`` gradients on the straight path from ``baseline`` (default:
    zeros in the model's input space; one image or one per image) to the input; ``batch`` path points
    go through the model at once.
    """

    key = "ig"
    signed = True

    def __init__(self, model: nn.Module, *, baseline: torch.Tensor | None = None, steps: int = 32,
                 batch: int = 16, multilabel: bool = False) -> None:
        super().__init__(model, multilabel=multilabel)
        self.baseline, self.steps, self.batch = baseline, int(steps), int(batch)

    def attribute(self, x: torch.Tensor, target: Target = 1) -> np.ndarray:
        self.model.eval()
        targets = _targets(target, x.shape[0])
        base = torch.zeros_like(x) if self.baseline is None else self.baseline.to(x).expand_as(x)
        alphas = (torch.arange(self.steps, dtype=x.dtype) + 0.5) / self.steps
        total = torch.zeros_like(x)
        # path points in image-major order: image n, step s is row n * steps + s
        rows = [(n, s) for n in range(x.shape[0]) for s in range(self.steps)]
        for i in range(0, len(rows), self.batch):
            chunk = rows[i : i + self.batch]
            img = torch.tensor([n for n, _ in chunk])
            al = alphas[[s for _, s in chunk]].view(-1, 1, 1, 1)
            path = (base[img] + al * (x[img] - base[img])).detach().requires_grad_(True)
            with torch.enable_grad():
                s = self.score(self.model(path), [targets[n] for n, _ in chunk]).sum()
                (g,) = torch.autograd.grad(s, path)
            for n in sorted({n for n, _ in chunk}):
                total[n] += g[img == n].sum(0)
        attr = (x - base) * total / self.steps
        return attr.sum(1).detach().numpy().astype(np.float32)

    def legend(self, m: np.ndarray) -> tuple[float, float]:
        # Pixel-level IG is spiky: clip its legend at the 99.5th percentile of |value| so that a few
        # pixels do not wash out the rest (values beyond it show at the ends of the colour ramp).
        r = float(max(np.percentile(np.abs(m), 99.5), 1e-12))
        return -r, r

    def describe(self, m: np.ndarray) -> str:
        return f"{m.shape[0]}x{m.shape[1]} input pixels"


class Occlusion(SaliencyMethod):
    """Occlusion: drop of the target score when a square patch is replaced by ``fill``.

    The map lies on the patch grid (positive = the region supports the target); the overlay is the
    per-pixel mean drop over the patches that cover each pixel (:meth:`dense`). ``patch`` defaults to
    an eighth of the short side (at least 4), ``stride`` to half the patch; ``fill`` is a number or an
    image (1 or N, C, H, W); ``batch`` occluded images go through the model at once.
    """

    key = "occlusion"
    signed = True

    def __init__(self, model: nn.Module, *, patch: int | None = None, stride: int | None = None,
                 fill: float | torch.Tensor = 0.0, batch: int = 64, multilabel: bool = False) -> None:
        super().__init__(model, multilabel=multilabel)
        self.patch, self.stride, self.fill, self.batch = patch, stride, fill, int(batch)

    def positions(self, shape: tuple[int, int]) -> tuple[int, list[int], list[int]]:
        """(patch, top rows, left columns) of the patches on an image of ``shape``."""
        h, w = shape
        patch = self.patch or max(4, min(h, w) // 8)
        stride = self.stride or max(1, patch // 2)
        return patch, list(range(0, max(h - patch, 0) + 1, stride)), list(range(0, max(w - patch, 0) + 1, stride))

    @torch.no_grad()
    def attribute(self, x: torch.Tensor, target: Target = 1) -> np.ndarray:
        self.model.eval()
        targets = _targets(target, x.shape[0])
        patch, ys, xs = self.positions(tuple(x.shape[2:]))
        ref = self.score(self.model(x), targets).numpy()
        pos = [(r, c) for r in ys for c in xs]
        rows = [(n, p) for n in range(x.shape[0]) for p in range(len(pos))]
        drops = np.empty(len(rows), dtype=np.float32)
        fill = torch.as_tensor(self.fill, dtype=x.dtype)
        if fill.ndim == 4:  # one fill image, or one per image: (1 or N, C, H, W)
            fills = [fill[n if fill.shape[0] > 1 else 0] for n in range(x.shape[0])]
        else:
            fills = [fill] * x.shape[0]
        for i in range(0, len(rows), self.batch):
            chunk = rows[i : i + self.batch]
            img = [n for n, _ in chunk]
            xb = x[img]  # advanced indexing copies
            for k, (n, p) in enumerate(chunk):
                r, c = pos[p]
                f = fills[n]
                xb[k, :, r : r + patch, c : c + patch] = f if f.ndim == 0 else f[..., r : r + patch, c : c + patch]
            drops[i : i + len(chunk)] = ref[img] - self.score(self.model(xb), [targets[n] for n in img]).numpy()
        return drops.reshape(x.shape[0], len(ys), len(xs))

    def dense(self, m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Per-pixel map of an image of ``shape`` from its patch-grid map ``m``."""
        patch, ys, xs = self.positions(shape)
        acc = np.zeros(shape, dtype=np.float64)
        cnt = np.zeros(shape, dtype=np.float64)
        for (r, c), d in zip([(r, c) for r in ys for c in xs], m.ravel()):
            acc[r : r + patch, c : c + patch] += d
            cnt[r : r + patch, c : c + patch] += 1
        return np.where(cnt > 0, acc / np.maximum(cnt, 1), 0.0).astype(np.float32)

    def overlay_map(self, m: np.ndarray, input_shape: tuple[int, int], out_shape: tuple[int, int]) -> np.ndarray:
        return upsample(self.dense(m, input_shape), out_shape)

    def describe(self, m: np.ndarray) -> str:
        return f"{m.shape[0]}x{m.shape[1]} occluded patches"


#: the class of each method key
METHOD_CLASSES: dict[str, type[SaliencyMethod]] = {
    "gradcam": GradCAM,
    "gradcampp": GradCAMPlusPlus,
    "ig": IntegratedGradients,
    "occlusion": Occlusion,
}


def make_method(
    model: nn.Module,
    method: str = "gradcam",
    *,
    layer: nn.Module | str | None = None,
    baseline: torch.Tensor | None = None,
    multilabel: bool = False,
    **options,
) -> SaliencyMethod:
    """The :class:`SaliencyMethod` ``method`` bound to ``model``.

    ``layer`` is used by the CAM methods, ``baseline`` is IG's baseline and Occlusion's fill;
    ``options``: ``steps``/``batch`` for IG, ``patch``/``stride``/``batch`` for Occlusion.
    """
    if method not in METHOD_CLASSES:
        raise InputError(f"unknown saliency method {method!r}; expected one of {', '.join(METHODS)}")
    cls = METHOD_CLASSES[method]
    if issubclass(cls, CAM):  # the CAM methods have no options
        return cls(model, layer, multilabel=multilabel)
    if cls is Occlusion:
        return cls(model, fill=baseline if baseline is not None else 0.0, multilabel=multilabel, **options)
    return cls(model, baseline=baseline, multilabel=multilabel, **options)


def compute(
    model: nn.Module,
    x: torch.Tensor,
    method: str = "gradcam",
    target: int = 1,
    *,
    out_shape: tuple[int, int] | None = None,
    layer: nn.Module | str | None = None,
    baseline: torch.Tensor | None = None,
    multilabel: bool = False,
    **options,
) -> SaliencyMap:
    """Saliency map of one preprocessed input ``x`` (1, C, H, W) for class ``target``.

    Parameters
    ----------
    method : one of :data:`METHODS`.
    out_shape : shape of the upsampled map (default: the input's H, W).
    layer : Grad-CAM layer (module or name; default ``model.cam_layer``).
    baseline : IG baseline and Occlusion fill in input space (default zeros).
    options : ``steps``/``batch`` for IG, ``patch``/``stride``/``batch`` for Occlusion.
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise InputError(f"saliency needs one image as a (1, C, H, W) tensor; got {tuple(x.shape)}")
    explainer = make_method(model, method, layer=layer, baseline=baseline, multilabel=multilabel, **options)
    return explainer(x, int(target), out_shape=out_shape)[0]


# ------------------------------------------------------------------------------------ sanity check
def parameter_layers(model: nn.Module) -> list[str]:
    """Names of modules that own parameters directly, in registration order (input side first)."""
    return [n for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def randomize_layers(model: nn.Module, names: list[str], *, seed: int = 0) -> None:
    """Re-initialise the parameters of the named modules in place.

    Convolutions and linear layers use their own ``reset_parameters`` (PyTorch's default init);
    anything else, BatchNorm included, gets Gaussian values with the mean and standard deviation of
    the trained tensor (BatchNorm running statistics are kept, as a frozen network would use them).
    ``reset_parameters`` draws from torch's global generator, so it is seeded inside a forked RNG state:
    the caller's random stream is left as it was.
    """
    mods = dict(model.named_modules())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        with torch.no_grad():
            for n in names:
                m = mods[n]
                if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                    m.reset_parameters()
                    continue
                for p in m.parameters(recurse=False):
                    sd = float(p.std()) if p.numel() > 1 else 0.0
                    p.copy_(torch.randn_like(p) * (sd if sd > 0 else 0.1) + float(p.mean()))


def randomized_copy(model: nn.Module, *, depth: int | None = None, seed: int = 0) -> tuple[nn.Module, list[str]]:
    """Copy of ``model`` with its top ``depth`` parameter layers randomised (all when None).

    Cascading randomisation of Adebayo et al. (2018): layers are randomised from the output down.
    """
    twin = copy.deepcopy(model).eval()
    layers = parameter_layers(twin)[::-1]
    chosen = layers if depth is None else layers[: max(0, depth)]
    randomize_layers(twin, chosen, seed=seed)
    return twin, chosen


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (nan when one is constant)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _similarity(m1: SaliencyMap, m2: SaliencyMap) -> float:
    if m1.signed:
        return spearman(np.abs(m1.map), np.abs(m2.map))
    return spearman(m1.map, m2.map)


def sanity_check(
    model: nn.Module,
    x: torch.Tensor,
    method: str = "gradcam",
    target: int = 1,
    *,
    depth: int | None = None,
    cascade: bool = False,
    seed: int = 0,
    **kwargs,
) -> SanityResult:
    """Model-randomisation test: the same method on a copy with randomised weights.

    Parameters
    ----------
    depth : how many parameter layers to randomise from the top (None: all of them).
    cascade : also record the similarity after each additional layer (one map per layer).
    seed : seed of the re-initialisation (layer ``k`` of a cascade uses ``seed + k``).
    kwargs : passed to :func:`compute` (``layer`` may be a module of ``model``; it is resolved by name).
    """
    if method in ("gradcam", "gradcampp"):
        # the twin is a deep copy, so the layer must be found by name there
        kwargs["layer"] = _module_name(model, kwargs.get("layer"))
    orig = compute(model, x, method, target, **kwargs)
    steps: list[tuple[str, float]] = []
    if cascade:
        layers = parameter_layers(model)[::-1]
        n = len(layers) if depth is None else depth
        twin = copy.deepcopy(model).eval()
        for k in range(n):
            randomize_layers(twin, [layers[k]], seed=seed + k)
            steps.append((layers[k], _similarity(orig, compute(twin, x, method, target, **kwargs))))
        rand = compute(twin, x, method, target, **kwargs)
        chosen = layers[:n]
    else:
        twin, chosen = randomized_copy(model, depth=depth, seed=seed)
        rand = compute(twin, x, method, target, **kwargs)
    return SanityResult(orig, rand, _similarity(orig, rand), chosen, steps)


# ---------------------------------------------------------------------------------------- drawing
def strength(values: np.ndarray, smap: SaliencyMap) -> np.ndarray:
    """How strongly each value speaks, in [0, 1]: |v| / range for signed maps, (v - vmin) / range else."""
    v = np.asarray(values, dtype=np.float32)
    if smap.signed:
        w = np.abs(v) / max(abs(smap.vmin), abs(smap.vmax), 1e-12)
    else:
        w = (v - smap.vmin) / max(smap.vmax - smap.vmin, 1e-12)
    return np.clip(w, 0, 1)


def heat_rgba(values: np.ndarray, smap: SaliencyMap, colormap: str = "Jet") -> np.ndarray:
    """(h, w, 4) float32 overlay of ``values`` (a map of ``smap``, possibly resized or cropped): colour
    from the map's ramp (diverging when signed), alpha from :func:`strength`, so weak areas stay clear."""
    rgb = colorize(values, vmin=smap.vmin, vmax=smap.vmax, stops=ramp(colormap, signed=smap.signed))
    return np.concatenate([rgb, strength(values, smap)[..., None]], -1)


def overlay(grey: np.ndarray, smap: SaliencyMap, *, alpha: float = 0.6, colormap: str = "Jet") -> np.ndarray:
    """RGB uint8 overlay of ``smap`` on a [0, 1] grey image (the CLI's overlay PNG).

    Opacity grows with the magnitude of the map (up to ``alpha``), so weak regions show the film.
    """
    g = np.asarray(grey)
    m = smap.upsampled if smap.upsampled.shape == g.shape else upsample(smap.map, g.shape)
    return blend(g, heat_rgba(m, smap, colormap), opacity=alpha)
