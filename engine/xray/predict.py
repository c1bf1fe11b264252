"""Classifier wrapper: load a model (the shipped default, a user's TorchScript file, torchxrayvision),
preprocess grey images, predict calibrated probabilities, explain with saliency maps.

Model specs accepted by :meth:`Classifier.load`:

- ``"default"``: ``assets/models/cxr_pneumonia_cv_ensemble.json`` (v2.0, an ensemble of 3 fold models;
  weights checked against their sha256);
- a path to a model JSON config: ``"format": "state_dict"`` (our architecture, see ``train.py``) or
  ``"format": "torchscript"`` with ``"weights": "file.pt"`` next to it;
- a path to a TorchScript file (``.pt``/``.pth``/``.ts``): its spec is read from a JSON file of the same
  stem if present (``labels``, ``positive_label``, ``input``: size/channels/range/mean/std, ``output``:
  ``softmax`` | ``sigmoid``, ``temperature``, ``threshold``), else defaults (NORMAL/PNEUMONIA,
  224^2, 1 channel, [0, 1], softmax, threshold 0.5);
- ``"xrv:NAME"`` (e.g. ``xrv:densenet121-res224-all``): a torchxrayvision model whose weights are
  already in its cache folder; nothing is downloaded.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.core.errors import InputError
from engine.xray import saliency as sal
from engine.xray.data import resize
from engine.xray.model import (
    EnsembleNet,
    build_model,
    sha256_file,
)

MODELS_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"
DEFAULT_MODEL = MODELS_DIR / "cxr_pneumonia_cv_ensemble.json"
MIN_INPUT_SIDE = 8  # smaller films carry no usable detail and break the network's strides
MAX_MODEL_BYTES = 512 * 2**20  # a DenseNet-121 is ~30 MB; refuse absurd files before reading them
_DEFAULT_SPEC = {
    "labels": ["NORMAL", "PNEUMONIA"],
    "positive_label": "PNEUMONIA",
    "input": {"size": 224, "channels": 1, "range": [0.0, 1.0], "mean": 0.0, "std": 1.0},
    "output": "softmax",
    "temperature": 1.0,
    "threshold": 0.5,
}


class Classifier:
    """A binary chest X-ray classifier with calibrated P(positive) and an operating threshold.

    Attributes
    ----------
    model : the torch module (eval mode, CPU).
    config : the model's JSON spec (labels, input, temperature, threshold, ...).
    name : short name for reports (``"cxr_pneumonia_resnet_small v1.0"``, a file name, ``"xrv:..."``).
    kind : ``"builtin"``, ``"torchscript"`` or ``"torchxrayvision"``.
    labels : class names of the model outputs.
    positive_index : output column of the positive class (PNEUMONIA).
    input_size : square side the image is resized to.
    temperature, threshold : calibration temperature and operating threshold on P(positive).
    multilabel : outputs are independent sigmoid scores (torchxrayvision) rather than a softmax.
    cam_layer : module hooked by Grad-CAM, or None (TorchScript: use ``ig`` or ``occlusion``).
    threads : torch threads used for inference (default 1; None keeps the process setting). These
        inputs are small: on a busy 2-core CPU two threads made a 160^2 forward pass ~100x slower
        (468 ms against 2.6 ms) and batches ~10x slower (2,600 against 25,000 images/min), measured,
        because the threads wait for each other; set 2+ only on an idle machine.
    """

    def __init__(
        self,
        model: nn.Module,
        config: dict,
        name: str,
        kind: str = "builtin",
        cam_layer: nn.Module | None = None,
    ) -> None:
        spec = {**_DEFAULT_SPEC, **config}
        spec["input"] = {**_DEFAULT_SPEC["input"], **config.get("input", {})}
        self.model = model.eval()
        self.config = spec
        self.name = name
        self.kind = kind
        self.labels: list[str] = [str(s) for s in spec["labels"]]
        pos = spec.get("positive_label", "PNEUMONIA")
        if pos not in self.labels:
            raise InputError(f"positive label {pos!r} is not among the model labels {self.labels}")
        self.positive_label: str = pos
        self.positive_index = self.labels.index(pos)
        inp = spec["input"]
        self.input_size = int(inp["size"])
        self.channels = int(inp.get("channels", 1))
        self.value_range = (float(inp["range"][0]), float(inp["range"][1]))
        self.mean = np.asarray(inp.get("mean", 0.0), dtype=np.float32)
        self.std = np.asarray(inp.get("std", 1.0), dtype=np.float32)
        self.temperature = float(spec.get("temperature", 1.0))
        self.threshold = float(spec.get("threshold", 0.5))
        self.multilabel = spec.get("output", "softmax") == "sigmoid"
        self.cam_layer = cam_layer
        self.threads: int | None = 1
        if not 8 <= self.input_size <= 2048 or self.channels not in (1, 3):
            raise InputError("model input spec must have 8 <= size <= 2048 and 1 or 3 channels")

    # ------------------------------------------------------------------ loading
    @classmethod
    def default(cls) -> Classifier:
        """The shipped pediatric pneumonia model (cached per process)."""
        global _DEFAULT_CACHE
        if _DEFAULT_CACHE is None:
            _DEFAULT_CACHE = cls.load("default")
        return _DEFAULT_CACHE

    @classmethod
    def load(cls, spec: str | Path = "default") -> Classifier:
        """Load a model from ``"default"``, a JSON config, a TorchScript file or ``"xrv:NAME"``.

        Raises
        ------
        InputError
            Missing/oversized/corrupt file, checksum mismatch, unknown format, or torchxrayvision
            not installed / its weights not on disk.
        """
        s = str(spec)
        if s in ("", "default"):
            return cls._from_config(DEFAULT_MODEL)
        if s.startswith("xrv:"):
            return cls._from_xrv(s[4:])
        p = Path(s).expanduser()
        if not p.is_file():
            raise InputError(
                f"model file {p} not found; expected 'default', a model .json, a TorchScript .pt or xrv:NAME"
            )
        if p.suffix.lower() == ".json":
            return cls._from_config(p)
        side = p.with_suffix(".json")
        cfg = _read_json(side) if side.is_file() else {}
        return cls._from_torchscript(p, cfg)

    @classmethod
    def _from_config(cls, path: Path) -> Classifier:
        if not path.is_file():
            raise InputError(f"model config {path} not found")
        cfg = _read_json(path)
        wpath = path.parent / str(cfg.get("weights", ""))
        if not cfg.get("weights") or not wpath.is_file():
            raise InputError(f"{path.name}: weights file {cfg.get('weights')!r} not found next to it")
        fmt = cfg.get("format", "state_dict")
        if fmt == "ensemble":
            return cls._from_ensemble(path, cfg)
        if fmt == "torchscript":
            return cls._from_torchscript(wpath, cfg)
        if fmt != "state_dict":
            raise InputError(f"{path.name}: unknown model format {fmt!r}; expected state_dict or torchscript")
        _check_size(wpath)
        if cfg.get("sha256") and sha256_file(wpath) != cfg["sha256"]:
            raise InputError(
                f"{wpath.name}: SHA-256 does not match {path.name}; the weights file is damaged or replaced"
            )
        try:
            state = torch.load(wpath, map_location="cpu", weights_only=True)
            model = build_model(cfg)
            model.load_state_dict(state)
        except Exception as e:  # corrupt file or another architecture
            raise InputError(
                f"{wpath.name}: cannot load the weights ({type(e).__name__}: {str(e)[:120]})"
            ) from e
        name = f"{cfg.get('name', path.stem)} v{cfg.get('version', '?')}"
        return cls(model, cfg, name, "builtin", cam_layer=model.cam_layer)

    @classmethod
    def _from_ensemble(cls, path: Path, cfg: dict) -> Classifier:
        members = cfg.get("members")
        if not isinstance(members, list) or not members:
            raise InputError(f"{path.name}: an ensemble config needs a non-empty 'members' list")
        nets = []
        for m in members:
            wpath = path.parent / Path(str(m.get("weights", ""))).name
            if not wpath.is_file():
                raise InputError(f"{path.name}: member weights {m.get('weights')!r} not found next to it")
            _check_size(wpath)
            if m.get("sha256") and sha256_file(wpath) != m["sha256"]:
                raise InputError(
                    f"{wpath.name}: SHA-256 does not match {path.name}; the weights file is damaged or replaced"
                )
            try:
                net = build_model(cfg)
                net.load_state_dict(torch.load(wpath, map_location="cpu", weights_only=True))
            except Exception as e:
                raise InputError(
                    f"{wpath.name}: cannot load the weights ({type(e).__name__}: {str(e)[:120]})"
                ) from e
            nets.append(net)
        model = EnsembleNet(nets)
        name = f"{cfg.get('name', path.stem)} v{cfg.get('version', '?')}"
        return cls(model, cfg, name, "builtin", cam_layer=model.cam_layer)

    @classmethod
    def _from_torchscript(cls, path: Path, cfg: dict) -> Classifier:
        _check_size(path)
        try:
            with warnings.catch_warnings():  # torch 2.9+ flags TorchScript as deprecated; users still ship it
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:
            raise InputError(
                f"{path.name}: not a TorchScript model ({type(e).__name__}); save one with torch.jit.save"
            ) from e
        return cls(model, cfg, path.name, "torchscript", cam_layer=None)

    @classmethod
    def _from_xrv(cls, weights: str) -> Classifier:
        try:
            import torchxrayvision as xrv  # optional dependency
        except ImportError:
            raise InputError(
                "torchxrayvision is not installed; install it (pip install torchxrayvision) and put the "
                "model "
                "weights in its cache folder (~/.torchxrayvision/models_data), or use --model default"
            ) from None
        info = getattr(xrv.models, "model_urls", {}).get(weights)
        if info is None:
            raise InputError(f"unknown torchxrayvision model {weights!r}")
        cache = Path(getattr(getattr(xrv, "utils", None), "get_cache_dir", lambda: "~/.torchxrayvision/")())
        local = (cache / "models_data" / Path(info["weights_url"]).name).expanduser()
        if not local.is_file():
            raise InputError(
                f"torchxrayvision weights not found at {local}; this app never downloads weights"
            )
        factory = xrv.models.ResNet if "resnet" in weights else xrv.models.DenseNet
        model = factory(weights=weights)
        labels = [str(p) for p in model.pathologies]
        if "Pneumonia" not in labels:
            raise InputError(f"torchxrayvision model {weights!r} has no Pneumonia output")
        size = 512 if "512" in weights else 224
        cfg = {
            "labels": labels,
            "positive_label": "Pneumonia",
            "input": {"size": size, "channels": 1, "range": [-1024.0, 1024.0], "mean": 0.0, "std": 1.0},
            "output": "sigmoid",
            "threshold": 0.5,
        }
        cam = getattr(model, "features", None)
        return cls(model, cfg, f"xrv:{weights}", "torchxrayvision", cam_layer=cam)

    # ------------------------------------------------------------------ inference
    def label_names(self) -> tuple[str, str]:
        """(negative, positive) names used in predictions: NORMAL / PNEUMONIA for every model."""
        return "NORMAL", "PNEUMONIA"

    @staticmethod
    def check_image(image: np.ndarray) -> np.ndarray:
        """The image as a 2-D float32 grey array, or InputError when it cannot be classified.

        Called per file before a batch is predicted, so one tiny image is one failed file, not a failed batch.
        """
        a = np.asarray(image, dtype=np.float32)
        if a.ndim == 3 and a.shape[2] in (3, 4):  # colour picture of a grey film
            a = a[..., :3].mean(2)
        if a.ndim != 2:
            raise InputError(f"image has shape {a.shape}; expected a 2-D grey image")
        if min(a.shape) < MIN_INPUT_SIDE:
            raise InputError(
                f"image is {a.shape[1]}x{a.shape[0]} pixels; the classifier needs at least "
                f"{MIN_INPUT_SIDE}x{MIN_INPUT_SIDE}"
            )
        return a

    def preprocess(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """Grey [0, 1] image(s) of any size -> model input ``(N, C, S, S)`` float32."""
        if isinstance(images, np.ndarray) and images.ndim == 2:
            images = [images]
        batch = []
        for img in images:
            a = self.check_image(img)
            a = resize(np.clip(np.nan_to_num(a), 0.0, 1.0), self.input_size)
            batch.append(a)
        x = np.stack(batch)[:, None]
        lo, hi = self.value_range
        x = lo + (hi - lo) * x
        mean = self.mean.reshape(-1, 1, 1) if self.mean.ndim else self.mean
        std = self.std.reshape(-1, 1, 1) if self.std.ndim else self.std
        x = np.repeat(x, self.channels, axis=1)
        return torch.from_numpy(((x - mean) / std).astype(np.float32))

    def prob_from_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Calibrated P(positive) from raw outputs ``(N, C)``."""
        z = z.float()
        if z.ndim != 2:
            raise InputError(f"model output has shape {tuple(z.shape)}; expected (batch, classes)")
        if z.shape[1] == 1:
            return torch.sigmoid(z[:, 0] / self.temperature)
        if self.multilabel:
            return torch.sigmoid(z[:, self.positive_index] / self.temperature)
        return torch.softmax(z / self.temperature, 1)[:, self.positive_index]

    @torch.no_grad()
    def predict_proba(self, images: np.ndarray | Sequence[np.ndarray], *, batch_size: int = 64) -> np.ndarray:
        """Calibrated P(PNEUMONIA) for each grey [0, 1] image, shape (N,)."""
        if isinstance(images, np.ndarray) and images.ndim == 2:
            images = [images]
        out = []
        with torch_threads(self.threads):
            for i in range(0, len(images), batch_size):
                x = self.preprocess(images[i : i + batch_size])
                out.append(self.prob_from_logits(self.model(x)).numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def label_for(self, probability: float) -> str:
        """PNEUMONIA when ``probability >= threshold``, else NORMAL."""
        neg, pos = self.label_names()
        return pos if probability >= self.threshold else neg

    def predict(self, image: np.ndarray) -> tuple[str, float]:
        """(label, P(PNEUMONIA)) for one grey [0, 1] image."""
        with torch_threads(self.threads):
            p = float(self.predict_proba([image])[0])
        return self.label_for(p), p

    def predict_batch(self, images: Sequence[np.ndarray], *, batch_size: int = 64) -> list[tuple[str, float]]:
        """(label, P(PNEUMONIA)) for each image, computed in batches."""
        return [(self.label_for(float(p)), float(p)) for p in self.predict_proba(images, batch_size=batch_size)]

    # ------------------------------------------------------------------ saliency
    def target_index(self, target: str | int | None, image: np.ndarray | None = None) -> int:
        """Output column for a class name, index, or None (the predicted class)."""
        if target is None:
            if image is None:
                return self.positive_index
            label, _ = self.predict(image)
            target = self.positive_label if label == "PNEUMONIA" else "NORMAL"
        if isinstance(target, str):
            names = [t.upper() for t in self.labels]
            if target.upper() in names:
                return names.index(target.upper())
            if target.upper() == "PNEUMONIA":
                return self.positive_index
            if target.upper() == "NORMAL" and len(self.labels) == 2 and not self.multilabel:
                return 1 - self.positive_index
            raise InputError(f"target class {target!r} is not one of {self.labels}")
        return int(target)

    def _saliency_args(self, image: np.ndarray, method: str, target: str | int | None) -> dict:
        t = self.target_index(target, image)
        if (
            self.multilabel
            and t != self.positive_index
            and isinstance(target, str)
            and target.upper() == "NORMAL"
        ):
            raise InputError("this multi-label model has no NORMAL output; explain PNEUMONIA instead")
        if method in ("gradcam", "gradcampp") and self.cam_layer is None:
            raise InputError(
                f"{METHOD_NAMES[method]} needs a hookable layer, which {self.kind} models lack here; "
                "use ig or occlusion"
            )
        x = self.preprocess(image)
        black = self.preprocess(np.zeros((self.input_size, self.input_size), np.float32))
        shape = tuple(np.asarray(image).shape[:2])
        return {
            "x": x,
            "target": t,
            "out_shape": shape,
            "layer": self.cam_layer,
            "baseline": black,
            "multilabel": self.multilabel,
        }

    def saliency(
        self, image: np.ndarray, method: str = "gradcam", target: str | int | None = None, **options
    ) -> sal.SaliencyMap:
        """Saliency map of one grey [0, 1] image.

        ``target``: class name or output index; None explains the predicted class. The upsampled
        map has the image's own shape. IG's baseline and Occlusion's fill are a black image.
        """
        a = self._saliency_args(image, method, target)
        if method not in ("gradcam", "gradcampp"):
            a.pop("layer")
        x, t = a.pop("x"), a.pop("target")
        with torch_threads(self.threads):
            return sal.compute(self.model, x, method, t, **a, **options)

    def sanity_check(
        self,
        image: np.ndarray,
        method: str = "gradcam",
        target: str | int | None = None,
        *,
        depth: int | None = None,
        cascade: bool = False,
        seed: int = 0,
        **options,
    ) -> sal.SanityResult:
        """:func:`engine.xray.saliency.sanity_check` on this model (on a randomised copy)."""
        a = self._saliency_args(image, method, target)
        if method not in ("gradcam", "gradcampp"):
            a.pop("layer")
        x, t = a.pop("x"), a.pop("target")
        with torch_threads(self.threads):
            return sal.sanity_check(
                self.model, x, method, t, depth=depth, cascade=cascade, seed=seed, **a, **options
            )


METHOD_NAMES = sal.METHODS


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads (None: leave the setting), then restore it."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


_DEFAULT_CACHE: Classifier | None = None


def _check_size(path: Path) -> None:
    n = path.stat().st_size
    if n > MAX_MODEL_BYTES:
        raise InputError(
            f"{path.name} is {n >> 20} MB; model files above {MAX_MODEL_BYTES >> 20} MB are refused"
        )


def _read_json(path: Path) -> dict:
    if path.stat().st_size > 1 << 20:
        raise InputError(f"{path.name} is larger than 1 MB; expected a small JSON model spec")
    try:
        obj = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path.name}: not valid JSON ({e.__class__.__name__})") from e
    if not isinstance(obj, dict):
        raise InputError(f"{path.name}: expected a JSON object with labels and input spec")
    return obj
