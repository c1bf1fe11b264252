"""Train the default chest X-ray classifier from scratch on a CPU, calibrate it and write its card.

Reproduce the committed weights with::

    nice -n 5 inverse-studio xray train --data ../shared/data/cxr-pneumonia/train --out assets/models

(the command calls :func:`train`). Steps: list ``DATA/{NORMAL,PNEUMONIA}``,
split 15% of the *patients* of each class off for validation (seeded), decode every image once into
a uint8 tensor, train with class-weighted cross-entropy and on-the-fly augmentation, fit a
temperature on the validation logits, pick the Youden threshold, compute metrics with patient-level
bootstrap intervals and write ``NAME.pt`` (state_dict), ``NAME.json`` (config), ``NAME.sha256``,
``NAME.md`` (model card), ``NAME_val_split.txt`` and ``NAME_train_log.jsonl``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.core.seeds import torch_generator
from engine.xray import calibration as cal
from engine.xray.data import LABELS, list_dataset, load_uint8, split_by_patient
from engine.xray.model import build_model, count_parameters, sha256_file

MODEL_NAME = "cxr_pneumonia_resnet_small"
VERSION = "1.0"


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random affine (rotation +-7 deg, scale 0.9-1.1, shift +-6%) and brightness/contrast/gamma.

    ``x`` is (N, 1, H, W) in [0, 1]. No horizontal flip: the heart and the stomach bubble are on
    the patient's left in almost every frontal film, so mirrored films are out of distribution.
    """
    n = x.shape[0]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)  # noqa: E731
    ang = u(-7, 7) * math.pi / 180
    sc = u(0.9, 1.1)
    tx, ty = u(-0.06, 0.06) * 2, u(-0.06, 0.06) * 2  # affine_grid works in [-1, 1] units
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    gamma = torch.exp(u(-0.25, 0.25)).view(n, 1, 1, 1)
    x = x.clamp(0, 1) ** gamma
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * u(0.85, 1.15).view(n, 1, 1, 1) + mean + u(-0.08, 0.08).view(n, 1, 1, 1)
    return x.clamp(0, 1)


def _to_input(xb: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return (xb - mean) / std


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, x_u8: torch.Tensor, mean: float, std: float, *, batch: int = 128
) -> np.ndarray:
    """Logits of a uint8 image stack ``(N, H, W)`` in eval mode."""
    model.eval()
    out = []
    for i in range(0, len(x_u8), batch):
        xb = x_u8[i : i + batch].unsqueeze(1).float() / 255.0
        out.append(model(_to_input(xb, mean, std)))
    return torch.cat(out).numpy()


def _load_avg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def train(
    data: str | Path,
    out: str | Path,
    *,
    name: str = MODEL_NAME,
    epochs: int = 10,
    seed: int = 0,
    size: int = 160,
    batch: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 5e-4,
    val_fraction: float = 0.15,
    widths: Sequence[int] = (24, 48, 96, 128),
    strides: Sequence[int] = (2, 2, 1),
    stem_stride: int = 4,
    threads: int = 2,
    limit: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Run the whole training on the CPU; returns the config that was written.

    Parameters
    ----------
    data : folder with ``NORMAL/`` and ``PNEUMONIA/`` images.
    out : folder for the weights, config, model card, validation split and training log.
    name : file stem of everything written.
    epochs, batch, lr, weight_decay : training schedule (AdamW with a one-cycle learning rate peaking at
        ``lr``).
    seed : seeds the split, the initial weights, the batch order, the augmentation and the bootstrap.
    size : square input side in pixels.
    val_fraction : share of each class's files held out for validation (whole patients).
    widths, strides, stem_stride : architecture (:class:`~engine.xray.model.CXRNet`): channels of the
        stem and of each residual stage, each stage's stride, the stem's stride.
    threads : torch CPU threads.
    limit : use only this many images per class (smoke runs); 0 uses all.
    progress : called with one line per step (counts, one JSON row per epoch, validation metrics).
    """
    say = progress or (lambda _line: None)
    t_start = time.perf_counter()
    load_start = _load_avg()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)  # the initial weights come from torch's global generator
    gen = torch_generator(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    items = list_dataset(data)
    if limit:
        items = [it for k in range(len(LABELS)) for it in [i for i in items if i.label == k][:limit]]
    tr_idx, va_idx = split_by_patient(items, val_fraction=val_fraction, seed=seed)
    say(f"{len(items)} images: {len(tr_idx)} train, {len(va_idx)} validation")
    x_all, y_all = load_uint8(items, size)
    x_tr, y_tr = torch.from_numpy(x_all[tr_idx]), torch.from_numpy(y_all[tr_idx])
    x_va, y_va = torch.from_numpy(x_all[va_idx]), y_all[va_idx]
    mean = float(x_tr.float().mean() / 255.0)
    std = float(x_tr.float().std() / 255.0)
    counts = np.bincount(y_tr.numpy(), minlength=len(LABELS))
    class_w = torch.tensor(len(y_tr) / (len(LABELS) * counts), dtype=torch.float32)  # balanced weights
    say(f"preloaded in {time.perf_counter() - t_start:.0f}s; class counts {counts.tolist()}")

    config = {
        "name": name,
        "version": VERSION,
        "format": "state_dict",
        "labels": list(LABELS),
        "positive_label": "PNEUMONIA",
        "arch": {
            "type": "CXRNet",
            "in_channels": 1,
            "widths": [int(w) for w in widths],
            "blocks": [1] * (len(widths) - 1),
            "dropout": 0.2,
            "stem_stride": stem_stride,
            "strides": [int(v) for v in strides],
        },
        "input": {
            "size": size,
            "channels": 1,
            "range": [0.0, 1.0],
            "mean": round(mean, 5),
            "std": round(std, 5),
        },
    }
    model = build_model(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(x_tr) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    log_path = out / f"{name}_train_log.jsonl"
    epoch_times: list[float] = []
    peak_load = 0.0
    with open(log_path, "w") as log:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            model.train()
            perm = torch.randperm(len(x_tr), generator=gen)
            tot, nb = 0.0, 0
            for i in range(0, len(perm), batch):
                b = perm[i : i + batch]
                if len(b) < 8:  # a tiny last batch makes BatchNorm noisy
                    continue
                xb = augment(x_tr[b].unsqueeze(1).float() / 255.0, gen)
                loss = F.cross_entropy(
                    model(_to_input(xb, mean, std)), y_tr[b], weight=class_w, label_smoothing=0.05
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                tot, nb = tot + float(loss.detach()), nb + 1
            logits = predict_logits(model, x_va, mean, std)
            p = cal.probabilities(logits)
            row = {
                "epoch": epoch,
                "train_loss": round(tot / max(nb, 1), 5),
                "val_nll": round(float(-np.log(np.where(y_va == 1, p, 1 - p) + 1e-12).mean()), 5),
                "val_auc": round(cal.roc_auc(y_va, p), 5),
                "val_acc@0.5": round(float(((p >= 0.5) == y_va).mean()), 5),
                "epoch_s": round(time.perf_counter() - t0, 1),
                "load": _load_avg(),
            }
            epoch_times.append(row["epoch_s"])
            peak_load = max(peak_load, (row["load"] or [0.0])[0])
            log.write(json.dumps(row) + "\n")
            log.flush()
            say(json.dumps(row))
    train_s = time.perf_counter() - t_start

    # Calibration and operating point on the validation split (final weights, no epoch picking).
    logits = predict_logits(model, x_va, mean, std)
    temperature = cal.fit_temperature(logits, y_va)
    p_raw = cal.probabilities(logits)
    p = cal.probabilities(logits, temperature)
    threshold = cal.youden_threshold(y_va, p)
    groups = np.array([items[i].patient for i in va_idx])
    metrics = cal.binary_metrics(y_va, p, threshold)
    ci = cal.bootstrap_ci(y_va, p, threshold, groups=groups, n=2000, seed=seed)
    calib = {
        "temperature": temperature,
        "nll_before": float(-np.log(np.where(y_va == 1, p_raw, 1 - p_raw) + 1e-12).mean()),
        "nll_after": float(-np.log(np.where(y_va == 1, p, 1 - p) + 1e-12).mean()),
        "ece_before": cal.expected_calibration_error(y_va, p_raw),
        "ece_after": cal.expected_calibration_error(y_va, p),
        "brier_after": cal.brier(y_va, p),
    }

    weights = out / f"{name}.pt"
    torch.save(model.state_dict(), weights)
    digest = sha256_file(weights)
    (out / f"{name}.sha256").write_text(f"{digest}  {weights.name}\n")
    n_val = np.bincount(y_va, minlength=2)
    config.update(
        {
            "weights": weights.name,
            "sha256": digest,
            "temperature": round(temperature, 5),
            "threshold": round(threshold, 5),
            "threshold_rule": "Youden J on the calibrated validation probability",
            "validation": {
                "images": int(len(va_idx)),
                "normal": int(n_val[0]),
                "pneumonia": int(n_val[1]),
                "patients": int(len(set(groups))),
                "metrics": {k: round(v, 4) for k, v in metrics.items()},
                "ci95": {k: [round(a, 4), round(b, 4)] for k, (a, b) in ci.items()},
                "calibration": {k: round(v, 4) for k, v in calib.items()},
            },
            "training": {
                "seed": seed,
                "epochs": epochs,
                "batch": batch,
                "optimizer": f"AdamW lr {lr} one-cycle (20% warm-up), weight decay {weight_decay}",
                "loss": "cross-entropy, balanced class weights "
                + str([round(float(w), 3) for w in class_w])
                + ", label smoothing 0.05",
                "augmentation": "rotation +-7 deg, scale 0.9-1.1, shift +-6%, gamma exp(+-0.25), "
                "contrast 0.85-1.15, brightness +-0.08; no horizontal flip",
                "train_images": int(len(tr_idx)),
                "wall_s": round(train_s, 1),
                "machine": f"{platform.machine()} {os.cpu_count()} cores, {threads} torch threads",
                "load_start": load_start,
                "load_end": _load_avg(),
                "load_max": peak_load,
                "epoch_s_range": [min(epoch_times), max(epoch_times)],
                "torch": torch.__version__,
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
                "parameters": count_parameters(model),
            },
        }
    )
    (out / f"{name}.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / f"{name}_val_split.txt").write_text(
        "\n".join(f"{LABELS[items[i].label]}/{items[i].path.name}" for i in va_idx) + "\n"
    )
    (out / f"{name}.md").write_text(model_card(config, weights.stat().st_size))
    say(json.dumps(config["validation"], indent=1))
    return config


def _fmt(config: dict, key: str) -> str:
    v = config["validation"]
    m, (lo, hi) = v["metrics"][key], v["ci95"][key]
    return f"{m:.3f} (95% CI {lo:.3f}-{hi:.3f})"


def model_card(config: dict, weights_bytes: int) -> str:
    """Markdown model card from a written config."""
    t, v, a, i = config["training"], config["validation"], config["arch"], config["input"]
    c = v["calibration"]
    grid = i["size"] // (a["stem_stride"] * int(np.prod(a["strides"])))
    return f"""# {config["name"]} v{config["version"]}: pediatric chest X-ray pneumonia classifier

**For demonstration and research only. Not a medical device; not for diagnosis or patient care.**

## Data

Trained on the training split of D. Kermany, K. Zhang, M. Goldbaum et al., "Labeled Optical Coherence
Tomography (OCT) and Chest X-Ray Images for Classification", Mendeley Data, v2, 2018,
doi:10.17632/rscbjbr9sj.2, licence CC BY 4.0 (described in Kermany et al., "Identifying Medical Diagnoses
and Treatable Diseases by Image-Based Deep Learning", Cell 172(5), 2018). We used 224x224 RGB copies
(equal channels, aspect ratio not kept) of its 5,216 training images: 1,341 NORMAL and 3,875 PNEUMONIA
(bacterial and viral) frontal (anterior-posterior) films of children aged 1-5 years from Guangzhou Women
and Children's Medical Center. The images are not distributed with this project.

Validation: {v["images"]} images ({v["normal"]} normal, {v["pneumonia"]} pneumonia) of {v["patients"]}
patients, split off from the training folder by patient (seed {t["seed"]}, {
        v["images"]
        / (
            v["images"] + t["train_images"]
        ):.0%} of the images, stratified by class): file names `personN_*` group one child;
normal films are grouped by their `IM-xxxx` / `NORMAL2-IM-xxxx` prefix. The list is in
`{config["name"]}_val_split.txt`. The official test split was not used.

## Model

- Architecture: small ResNet-style CNN (`engine.xray.model.CXRNet`): 5x5 stem with stride
  {a["stem_stride"]} ({a["widths"][0]} channels), {len(a["widths"]) - 1} residual stages of widths
  {", ".join(str(w) for w in a["widths"][1:])} and strides {
        ", ".join(str(s) for s in a["strides"])
    }, BatchNorm, ReLU, global average
  pooling, dropout {a["dropout"]}, linear layer to 2 logits ({", ".join(config["labels"])}).
  {t["parameters"]:,} parameters; weights `{config["weights"]}` ({weights_bytes / 1e6:.1f} MB, PyTorch
  state_dict; load with `torch.load(..., weights_only=True)`), SHA-256 `{config["sha256"]}`.
- Input: one grey channel, {i["size"]}x{i["size"]} (any image is resized without keeping the aspect
  ratio, as the training copies were), values in [0, 1] normalised as (x - {i["mean"]}) / {i["std"]}.
  Grad-CAM grid: {grid}x{grid}.
- Output: P(PNEUMONIA) = softmax(logits / T)[1], T = {config["temperature"]} (temperature scaling).
  Operating threshold {config["threshold"]} ({config["threshold_rule"]}).

## Training

From scratch (no pretraining), seed {t["seed"]}, {t["epochs"]} epochs, batch {t["batch"]}, {t["optimizer"]};
{t["loss"]}. Augmentation: {t["augmentation"]} (the heart sits on the patient's left in frontal films, so
mirrored films would be out of distribution). {t["train_images"]} training images, preloaded once.
Wall time {t["wall_s"] / 60:.1f} min on a shared CPU ({t["machine"]}; load average
{t["load_start"]} at start, {t["load_end"]} at end, 1-minute peak {t.get("load_max", "?")} while other jobs
shared the 2 cores; epochs took {t.get("epoch_s_range", "?")} s), torch {t["torch"]}, {t["date"]}.
Per-epoch loss and validation AUC: `{config["name"]}_train_log.jsonl`. Reproduce with
`inverse-studio xray train --data DIR --out DIR --epochs {t["epochs"]} --seed {t["seed"]}`
(results can differ in the last digits across CPUs and torch versions).

## Validation (held-out patients of the training folder)

At the operating threshold, with 95% percentile-bootstrap intervals (2,000 resamples of patients):

| metric | value |
|---|---|
| AUC | {_fmt(config, "auc")} |
| accuracy | {_fmt(config, "accuracy")} |
| sensitivity | {_fmt(config, "sensitivity")} |
| specificity | {_fmt(config, "specificity")} |

The threshold was chosen on the same split, so sensitivity and specificity there are slightly
optimistic. Calibration: NLL {c["nll_before"]:.3f} -> {c["nll_after"]:.3f}, ECE (10 bins)
{c["ece_before"]:.3f} -> {c["ece_after"]:.3f} before -> after temperature scaling; Brier {
        c["brier_after"]:.3f}.
For scale: Kermany et al. (Cell 2018) report AUC 0.968 and accuracy 92.8% on their test split with an
ImageNet-pretrained network; that test split is harder than a split of the training folder.

## Known limits

- Children aged 1-5 from one hospital; adult films, other sites, scanners and post-processing are out of
  its domain (the app warns when an image looks out of domain, but cannot detect all shifts).
- Trained on resized 8-bit JPEG copies (aspect ratio not kept); no DICOM windowing was seen in training.
- Frontal films only: no lateral views, no devices/lines knowledge, no other findings. It answers
  "pneumonia-like or not" only, with no bacterial/viral distinction.
- Validation comes from the training folder only (same acquisition as training); expect lower numbers
  on the official test split and much lower elsewhere.
- Saliency maps show what drives the score, not where the disease is.
"""
