"""Saliency maps for image classifiers, and the model-randomisation sanity check.

Methods (``METHODS``): Grad-CAM (Selvaraju et al., ICCV 2017; the default), Grad-CAM++ (Chattopadhay
et al., WACV 2018), Integrated Gradients (Sundararajan et al., ICML 2017) and Occlusion (Zeiler &
Fergus, ECCV 2014). Every method explains a *score* of one target class: its log-odds under the
softmax (``z_t - logsumexp(z_others)``; for two classes the logit difference), or the raw output
column for multi-label (sigmoid) models. Guided Backprop is deliberately absent: it fails the
model-randomisation test of Adebayo et al. (NeurIPS 2018), which :func:`sanity_check` runs.

Maps are returned at their true resolution (the feature grid for Grad-CAM, the patch grid for
Occlusion, the input grid for IG) plus an upsampled copy for overlays.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from engine.core.errors import InputError

METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcampp": "Grad-CAM++",
    "ig": "Integrated Gradients",
    "occlusion": "Occlusion",
}


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


def _forward_capture(model: nn.Module, layer_name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Model output and the hooked layer's output.

    The hook keeps the layer's own output and passes a clone downstream, so an in-place ReLU after the
    hooked layer cannot overwrite the activations we differentiate with respect to.
    """
    store: dict[str, torch.Tensor] = {}
    mod = dict(model.named_modules())[layer_name]

    def hook(_m: nn.Module, _inp: tuple, out: torch.Tensor) -> torch.Tensor:
        store["a"] = out
        return out.clone()

    h = mod.register_forward_hook(hook)
    try:
        z = model(x)
    finally:
        h.remove()
    if "a" not in store or store["a"].ndim != 4:
        raise InputError(f"layer {layer_name!r} did not give a (batch, channels, h, w) feature map")
    return z, store["a"]


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    layer: nn.Module | str | None = None,
    plusplus: bool = False,
    multilabel: bool = False,
) -> np.ndarray:
    """Grad-CAM (or Grad-CAM++) map of one input ``x`` (1, C, H, W) at the layer's grid resolution.

    Grad-CAM weights each channel by its spatially averaged gradient; Grad-CAM++ by positive gradients
    weighted with the second/third-order terms of Chattopadhay et al. (exponential-score form).
    """
    name = _module_name(model, layer)
    model.eval()
    x = x.detach().requires_grad_(False)
    with torch.enable_grad():
        z, a = _forward_capture(model, name, x)
        score = target_score(z, target, multilabel).sum()
        (g,) = torch.autograd.grad(score, a)
    a, g = a.detach()[0], g.detach()[0]
    if plusplus:
        g2, g3 = g**2, g**3
        denom = 2 * g2 + a.sum(dim=(1, 2), keepdim=True) * g3
        alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
        w = (alpha * F.relu(g)).sum(dim=(1, 2))
    else:
        w = g.mean(dim=(1, 2))
    cam = F.relu((w[:, None, None] * a).sum(0))
    return cam.numpy().astype(np.float32)


def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    baseline: torch.Tensor | None = None,
    steps: int = 32,
    batch: int = 16,
    multilabel: bool = False,
) -> np.ndarray:
    """Integrated Gradients summed over input channels, (H, W), signed.

    Riemann midpoint sum of ``steps`` gradients on the straight path from ``baseline`` (default:
    zeros in the model's input space) to ``x``.
    """
    model.eval()
    base = torch.zeros_like(x) if baseline is None else baseline.to(x).expand_as(x)
    alphas = (torch.arange(steps, dtype=x.dtype) + 0.5) / steps
    total = torch.zeros_like(x)
    for i in range(0, steps, batch):
        al = alphas[i : i + batch].view(-1, 1, 1, 1)
        path = (base + al * (x - base)).detach().requires_grad_(True)
        with torch.enable_grad():
            s = target_score(model(path), target, multilabel).sum()
            (g,) = torch.autograd.grad(s, path)
        total += g.sum(0, keepdim=True)
    attr = (x - base) * total / steps
    return attr[0].sum(0).detach().numpy().astype(np.float32)


@torch.no_grad()
def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    patch: int | None = None,
    stride: int | None = None,
    fill: float | torch.Tensor = 0.0,
    batch: int = 64,
    multilabel: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Occlusion: drop of the target score when a square patch is replaced by ``fill``.

    Returns the map on the patch grid (positive = the region supports the target) and a per-pixel
    map at input resolution (each pixel: mean drop over the patches that cover it).
    """
    model.eval()
    _, _, h, w = x.shape
    patch = patch or max(4, min(h, w) // 8)
    stride = stride or max(1, patch // 2)
    ys = list(range(0, max(h - patch, 0) + 1, stride))
    xs = list(range(0, max(w - patch, 0) + 1, stride))
    ref = float(target_score(model(x), target, multilabel)[0])
    pos = [(r, c) for r in ys for c in xs]
    drops = np.empty(len(pos), dtype=np.float32)
    fill_t = torch.as_tensor(fill, dtype=x.dtype)
    if fill_t.ndim == 4:  # a (1, C, H, W) fill image
        fill_t = fill_t[0]
    for i in range(0, len(pos), batch):
        chunk = pos[i : i + batch]
        xb = x.repeat(len(chunk), 1, 1, 1)
        for k, (r, c) in enumerate(chunk):
            xb[k, :, r : r + patch, c : c + patch] = (
                fill_t if fill_t.ndim == 0 else fill_t[..., r : r + patch, c : c + patch]
            )
        drops[i : i + len(chunk)] = ref - target_score(model(xb), target, multilabel).numpy()
    grid = drops.reshape(len(ys), len(xs))
    acc = np.zeros((h, w), dtype=np.float64)
    cnt = np.zeros((h, w), dtype=np.float64)
    for (r, c), d in zip(pos, drops):
        acc[r : r + patch, c : c + patch] += d
        cnt[r : r + patch, c : c + patch] += 1
    dense = np.where(cnt > 0, acc / np.maximum(cnt, 1), 0.0).astype(np.float32)
    return grid, dense


def upsample(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D map to ``shape`` (cells aligned to the image, not to its corners)."""
    if m.shape == tuple(shape):
        return m.astype(np.float32, copy=False)
    t = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None, None]
    return F.interpolate(t, size=tuple(shape), mode="bilinear", align_corners=False)[0, 0].numpy()


def compute(
    model: nn.Module,
    x: torch.Tensor,
    method: str = "gradcam",
    target: int = 1,
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
    out_shape = tuple(out_shape or x.shape[2:])
    if method in ("gradcam", "gradcampp"):
        name = _module_name(model, layer)
        m = grad_cam(model, x, target, name, plusplus=method == "gradcampp", multilabel=multilabel)
        up, signed, grid = (
            np.maximum(upsample(m, out_shape), 0),
            False,
            f"{m.shape[0]}x{m.shape[1]} feature map of {name}",
        )
    elif method == "ig":
        m = integrated_gradients(model, x, target, baseline, multilabel=multilabel, **options)
        up, signed, grid = upsample(m, out_shape), True, f"{m.shape[0]}x{m.shape[1]} input pixels"
    elif method == "occlusion":
        fill = baseline if baseline is not None else 0.0
        m, dense = occlusion(model, x, target, fill=fill, multilabel=multilabel, **options)
        up, signed, grid = upsample(dense, out_shape), True, f"{m.shape[0]}x{m.shape[1]} occluded patches"
    else:
        raise InputError(f"unknown saliency method {method!r}; expected one of {', '.join(METHODS)}")
    if signed:
        # Pixel-level IG is spiky: clip its legend at the 99.5th percentile of |value| so that a few
        # pixels do not wash out the rest (values beyond it show at the ends of the colour ramp).
        a = np.abs(m)
        r = float(max(np.percentile(a, 99.5) if method == "ig" else a.max(), 1e-12))
        vmin, vmax = -r, r
    else:
        vmin, vmax = 0.0, float(max(m.max(), 1e-12))
    return SaliencyMap(method, int(target), m, up.astype(np.float32), vmin, vmax, signed, grid)


def parameter_layers(model: nn.Module) -> list[str]:
    """Names of modules that own parameters directly, in registration order (input side first)."""
    return [n for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def randomize_layers(model: nn.Module, names: list[str], seed: int = 0) -> None:
    """Re-initialise the parameters of the named modules in place.

    Convolutions and linear layers use their own ``reset_parameters`` (PyTorch's default init);
    anything else, BatchNorm included, gets Gaussian values with the mean and standard deviation of
    the trained tensor (BatchNorm running statistics are kept, as a frozen network would use them).
    """
    mods = dict(model.named_modules())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            for n in names:
                m = mods[n]
                if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                    m.reset_parameters()
                    continue
                for p in m.parameters(recurse=False):
                    sd = float(p.std()) if p.numel() > 1 else 0.0
                    p.copy_(torch.randn_like(p) * (sd if sd > 0 else 0.1) + float(p.mean()))


def randomized_copy(model: nn.Module, depth: int | None = None, seed: int = 0) -> tuple[nn.Module, list[str]]:
    """Copy of ``model`` with its top ``depth`` parameter layers randomised (all when None).

    Cascading randomisation of Adebayo et al. (2018): layers are randomised from the output down.
    """
    twin = copy.deepcopy(model).eval()
    layers = parameter_layers(twin)[::-1]
    chosen = layers if depth is None else layers[: max(0, depth)]
    randomize_layers(twin, chosen, seed)
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
    kwargs : passed to :func:`compute` (``layer`` may be a module of ``model``; it is resolved by name).
    """
    if "layer" in kwargs and not isinstance(kwargs["layer"], str) and method in ("gradcam", "gradcampp"):
        kwargs["layer"] = _module_name(model, kwargs["layer"])
    elif method in ("gradcam", "gradcampp") and kwargs.get("layer") is None:
        kwargs["layer"] = _module_name(model, None)
    orig = compute(model, x, method, target, **kwargs)
    steps: list[tuple[str, float]] = []
    if cascade:
        layers = parameter_layers(model)[::-1]
        n = len(layers) if depth is None else depth
        twin = copy.deepcopy(model).eval()
        for k in range(n):
            randomize_layers(twin, [layers[k]], seed + k)
            steps.append((layers[k], _similarity(orig, compute(twin, x, method, target, **kwargs))))
        rand = compute(twin, x, method, target, **kwargs)
        chosen = layers[:n]
    else:
        twin, chosen = randomized_copy(model, depth, seed)
        rand = compute(twin, x, method, target, **kwargs)
    return SanityResult(orig, rand, _similarity(orig, rand), chosen, steps)


_CMAP_SEQ = np.array(  # dark blue -> blue -> cyan -> yellow -> red (a jet-like ramp without matplotlib)
    [[0.0, 0.0, 0.5], [0.0, 0.2, 1.0], [0.0, 0.9, 1.0], [1.0, 1.0, 0.0], [1.0, 0.3, 0.0], [0.6, 0.0, 0.0]]
)
_CMAP_DIV = np.array([[0.1, 0.2, 0.8], [1.0, 1.0, 1.0], [0.8, 0.1, 0.1]])  # blue - white - red


def colorize(m: np.ndarray, vmin: float, vmax: float, signed: bool) -> np.ndarray:
    """Map values to RGB floats in [0, 1] with a sequential (or, when signed, diverging) ramp."""
    t = np.clip((np.asarray(m, dtype=np.float64) - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    lut = _CMAP_DIV if signed else _CMAP_SEQ
    xs = np.linspace(0, 1, len(lut))
    return np.stack([np.interp(t, xs, lut[:, k]) for k in range(3)], -1)


def overlay(grey: np.ndarray, smap: SaliencyMap, alpha: float = 0.6) -> np.ndarray:
    """RGB uint8 overlay of ``smap.upsampled`` on a [0, 1] grey image of the same shape.

    Opacity grows with the magnitude of the map (up to ``alpha``), so weak regions show the film.
    """
    g = np.clip(np.asarray(grey, dtype=np.float64), 0, 1)
    m = smap.upsampled if smap.upsampled.shape == g.shape else upsample(smap.map, g.shape)
    if smap.signed:
        w = np.abs(m) / max(abs(smap.vmin), abs(smap.vmax), 1e-12)
    else:
        w = (m - smap.vmin) / max(smap.vmax - smap.vmin, 1e-12)
    w = alpha * np.clip(w, 0, 1)[..., None]
    rgb = (1 - w) * g[..., None] + w * colorize(m, smap.vmin, smap.vmax, smap.signed)
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
