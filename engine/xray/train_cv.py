"""Patient-grouped K-fold training of the default chest X-ray model (v2): an ensemble of fold models.

Reproduce the committed weights with::

    nice -n 5 inverse-studio xray train --cv 3 --data ../shared/data/cxr-pneumonia/train --out assets/models

Steps: list ``DATA/{NORMAL,PNEUMONIA}``; deal the *patients* of each class into ``folds`` folds (seeded,
balanced by image count); for each fold, train one network on the other folds with acquisition-shift
augmentation and predict its own fold (out-of-fold, OOF); fit one temperature on the pooled OOF logits;
choose the threshold on the pooled OOF probabilities (a robust balanced-accuracy rule, see
:func:`robust_threshold`); report OOF metrics with patient-bootstrap intervals. The shipped model is the
mean of the fold networks' logits. Files: ``NAME.json`` (``"format": "ensemble"``), ``NAME_foldK.pt``,
``NAME.sha256``, ``NAME.md``, ``NAME_oof.csv`` (fold, file, label, OOF probability) and
``NAME_train_log.jsonl``.

Runs on the CPU; uses CUDA when :func:`engine.core.device.pick_device` finds it.
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

from engine.core.seeds import numpy_rng, torch_generator
from engine.xray import calibration as cal
from engine.xray.data import LABELS, Item, list_dataset, load_uint8, patient_groups
from engine.xray.model import build_model, count_parameters, sha256_file

MODEL_NAME = "cxr_pneumonia_cv_ensemble"
VERSION = "2.0"
AUGMENTATION = (
    "rotation +-10 deg, scale 0.85-1.15, shift +-8%, gamma exp(+-0.4), contrast 0.7-1.3, brightness +-0.1, "
    "Gaussian blur sigma 0-1.5 px (p=0.4), resolution change x0.4-1 down and back up (p=0.4), Gaussian "
    "noise sigma 0-0.04 (p=0.4); no horizontal flip"
)


def patient_folds(items: Sequence[Item], folds: int, *, seed: int = 0) -> np.ndarray:
    """Fold index per item; all files of one patient share a fold, classes balanced per fold.

    Patients of each class are shuffled (seeded) and dealt, largest first within the shuffle order
    ties, to the fold that has the fewest images of that class so far.
    """
    rng = numpy_rng(seed)
    fold_of = np.full(len(items), -1, dtype=np.int64)
    for k in range(len(LABELS)):
        groups, keys = patient_groups(items, k, rng)
        keys.sort(key=lambda g: -len(groups[g]))  # stable: big patients first, shuffled among equals
        load = np.zeros(folds)
        for g in keys:
            f = int(np.argmin(load))
            fold_of[groups[g]] = f
            load[f] += len(groups[g])
    return fold_of


def _gauss_kernel(sigma: torch.Tensor, radius: int = 4) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t[None] / sigma.clamp_min(1e-3)[:, None]) ** 2)
    return k / k.sum(1, keepdim=True)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Geometric and acquisition-shift augmentation of ``(N, 1, H, W)`` in [0, 1] (see AUGMENTATION).

    Blur, resolution loss and noise mimic other detectors, other post-processing and re-sampled copies;
    gamma/contrast/brightness mimic other exposure and look-up tables. No horizontal flip: the heart sits
    on the patient's left in frontal films, so mirrored films are out of distribution.
    """
    n, _, h, w = x.shape
    dev = x.device
    u = lambda lo, hi: (lo + (hi - lo) * torch.rand(n, generator=gen)).to(dev)  # noqa: E731
    coin = lambda p: (torch.rand(n, generator=gen) < p).to(dev)  # noqa: E731
    ang = u(-10, 10) * math.pi / 180
    sc = u(0.85, 1.15)
    tx, ty = u(-0.08, 0.08) * 2, u(-0.08, 0.08) * 2
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # resolution change: down-sample by one shared random factor, back up (per-image mask)
    f = float(0.4 + 0.6 * torch.rand(1, generator=gen))
    lo_res = F.interpolate(
        F.interpolate(x, size=(max(8, int(h * f)), max(8, int(w * f))), mode="area"),
        size=(h, w),
        mode="bilinear",
        align_corners=False,
    )
    m = coin(0.4).view(n, 1, 1, 1)
    x = torch.where(m, lo_res, x)
    # separable Gaussian blur with a per-image sigma
    sig = u(0.2, 1.5)
    k = _gauss_kernel(sig.cpu()).to(dev)  # (n, 9)
    xb = F.conv2d(F.pad(x.transpose(0, 1), (4, 4, 0, 0), mode="replicate"), k[:, None, None, :], groups=n)
    xb = F.conv2d(F.pad(xb, (0, 0, 4, 4), mode="replicate"), k[:, None, :, None], groups=n).transpose(0, 1)
    x = torch.where(coin(0.4).view(n, 1, 1, 1), xb, x)
    gamma = torch.exp(u(-0.4, 0.4)).view(n, 1, 1, 1)
    x = x.clamp(0, 1) ** gamma
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * u(0.7, 1.3).view(n, 1, 1, 1) + mean + u(-0.1, 0.1).view(n, 1, 1, 1)
    noise = torch.randn(x.shape, generator=gen).to(dev) * u(0.0, 0.04).view(n, 1, 1, 1)
    x = x + noise * coin(0.4).view(n, 1, 1, 1)
    return x.clamp(0, 1)


def robust_threshold(y: np.ndarray, p: np.ndarray, *, tol: float = 0.005) -> float:
    """Operating threshold on P(positive): the middle (in logit space) of the band of thresholds whose
    balanced accuracy is within ``tol`` of the best.

    Balanced accuracy does not depend on the class mix, so the choice does not follow the training
    folder's 26% NORMAL share; taking the middle of the near-optimal band instead of its edge (Youden's
    point sits next to the last negatives) leaves room for the shift of new patients and sites.
    """
    y = np.asarray(y)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    cand = np.unique(np.concatenate([p, (p[:-1] + p[1:]) / 2 if len(p) > 1 else p]))
    pos, neg = y == 1, y == 0
    sens = np.array([(p[pos] >= t).mean() for t in cand])
    spec = np.array([(p[neg] < t).mean() for t in cand])
    ba = (sens + spec) / 2
    band = cand[ba >= ba.max() - tol]
    logit = np.log(band / (1 - band))
    mid = (logit.min() + logit.max()) / 2
    return float(1 / (1 + np.exp(-mid)))


def _load_avg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


@torch.no_grad()
def _logits(model: torch.nn.Module, x_u8: torch.Tensor, mean: float, std: float, dev: torch.device) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(x_u8), 128):
        xb = x_u8[i : i + 128].unsqueeze(1).float().to(dev) / 255.0
        out.append(model((xb - mean) / std).cpu())
    return torch.cat(out).numpy()


def train_cv(
    data: str | Path,
    out: str | Path,
    *,
    name: str = MODEL_NAME,
    folds: int = 3,
    epochs: int = 10,
    seed: int = 0,
    size: int = 160,
    batch: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 5e-4,
    widths: Sequence[int] = (24, 48, 96, 128),
    strides: Sequence[int] = (2, 2, 1),
    stem_stride: int = 4,
    threads: int = 2,
    limit: int = 0,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Train ``folds`` fold models, pool their out-of-fold predictions, write the ensemble and its card.

    Parameters
    ----------
    data : folder with ``NORMAL/`` and ``PNEUMONIA/`` images.
    out : folder for the weights, config, card, OOF table and log.
    folds : K of the patient-grouped K-fold (>= 2).
    epochs, batch, lr, weight_decay : schedule of every fold model (AdamW, one-cycle).
    seed : seeds the folds, the initial weights, the batch order and the augmentation.
    size : square input side; widths, strides, stem_stride : the :class:`~engine.xray.model.CXRNet`.
    threads : torch CPU threads. limit : images per class (smoke runs); 0 uses all.
    device : ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    progress : called with one line per step.
    """
    from engine.core.device import pick_device

    say = progress or (lambda _line: None)
    t_start = time.perf_counter()
    load_start = _load_avg()
    torch.set_num_threads(threads)
    dev = torch.device(pick_device(device) if device != "cpu" else "cpu")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = list_dataset(data)
    if limit:
        items = [it for k in range(len(LABELS)) for it in [i for i in items if i.label == k][:limit]]
    fold_of = patient_folds(items, folds, seed=seed)
    x_all_np, y_all = load_uint8(items, size)
    x_all = torch.from_numpy(x_all_np)
    mean = float(x_all.float().mean() / 255.0)
    std = float(x_all.float().std() / 255.0)
    say(f"{len(items)} images in {folds} patient folds {np.bincount(fold_of).tolist()}; preloaded in "
        f"{time.perf_counter() - t_start:.0f}s on {dev}")
    arch = {
        "type": "CXRNet",
        "in_channels": 1,
        "widths": [int(w) for w in widths],
        "blocks": [1] * (len(widths) - 1),
        "dropout": 0.2,
        "stem_stride": stem_stride,
        "strides": [int(v) for v in strides],
    }
    config: dict = {
        "name": name,
        "version": VERSION,
        "format": "ensemble",
        "labels": list(LABELS),
        "positive_label": "PNEUMONIA",
        "arch": arch,
        "input": {"size": size, "channels": 1, "range": [0.0, 1.0], "mean": round(mean, 5),
                  "std": round(std, 5)},
    }
    oof = np.zeros((len(items), 2), dtype=np.float32)
    members = []
    epoch_times: list[float] = []
    peak = 0.0
    log_path = out / f"{name}_train_log.jsonl"
    with open(log_path, "w") as log:
        for f in range(folds):
            torch.manual_seed(seed + f)
            gen = torch_generator(seed + 1000 * (f + 1))
            tr = np.nonzero(fold_of != f)[0]
            va = np.nonzero(fold_of == f)[0]
            x_tr, y_tr = x_all[tr], torch.from_numpy(y_all[tr])
            counts = np.bincount(y_tr.numpy(), minlength=2)
            class_w = torch.tensor(len(y_tr) / (2 * counts), dtype=torch.float32).to(dev)
            model = build_model(config).to(dev)
            opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
            steps = epochs * math.ceil(len(tr) / batch)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
            for epoch in range(1, epochs + 1):
                t0 = time.perf_counter()
                model.train()
                perm = torch.randperm(len(tr), generator=gen)
                tot, nb = 0.0, 0
                for i in range(0, len(perm), batch):
                    b = perm[i : i + batch]
                    if len(b) < 8:  # a tiny last batch makes BatchNorm noisy
                        sched.step()
                        continue
                    xb = augment(x_tr[b].unsqueeze(1).float().to(dev) / 255.0, gen)
                    loss = F.cross_entropy(model((xb - mean) / std), y_tr[b].to(dev), weight=class_w,
                                           label_smoothing=0.05)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    tot, nb = tot + float(loss.detach()), nb + 1
                row = {"fold": f, "epoch": epoch, "train_loss": round(tot / max(nb, 1), 5),
                       "epoch_s": round(time.perf_counter() - t0, 1), "load": _load_avg()}
                if epoch == epochs or epoch % 3 == 0:
                    z = _logits(model, x_all[va], mean, std, dev)
                    row["oof_auc"] = round(cal.roc_auc(y_all[va], cal.probabilities(z)), 5)
                epoch_times.append(row["epoch_s"])
                peak = max(peak, (row["load"] or [0.0])[0])
                log.write(json.dumps(row) + "\n")
                log.flush()
                say(json.dumps(row))
            oof[va] = _logits(model, x_all[va], mean, std, dev)
            wpath = out / f"{name}_fold{f}.pt"
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, wpath)
            members.append({"weights": wpath.name, "sha256": sha256_file(wpath), "fold": f,
                            "train_images": int(len(tr)), "oof_images": int(len(va)),
                            "oof_auc": round(cal.roc_auc(y_all[va], cal.probabilities(oof[va])), 4)})
    train_s = time.perf_counter() - t_start

    temperature = cal.fit_temperature(oof, y_all)
    p_raw = cal.probabilities(oof)
    p = cal.probabilities(oof, temperature)
    threshold = robust_threshold(y_all, p)
    youden = cal.youden_threshold(y_all, p)
    groups = np.array([it.patient for it in items])
    metrics = cal.binary_metrics(y_all, p, threshold)
    ci = cal.bootstrap_ci(y_all, p, threshold, groups=groups, n=1000, seed=seed)
    calib = {
        "nll_before": float(-np.log(np.where(y_all == 1, p_raw, 1 - p_raw) + 1e-12).mean()),
        "nll_after": float(-np.log(np.where(y_all == 1, p, 1 - p) + 1e-12).mean()),
        "ece_before": cal.expected_calibration_error(y_all, p_raw),
        "ece_after": cal.expected_calibration_error(y_all, p),
        "brier_after": cal.brier(y_all, p),
    }
    with open(out / f"{name}_oof.csv", "w") as fh:
        fh.write("fold,file,label,p_oof\n")
        for i, it in enumerate(items):
            fh.write(f"{int(fold_of[i])},{LABELS[it.label]}/{it.path.name},{LABELS[it.label]},{p[i]:.6f}\n")
    n_cls = np.bincount(y_all, minlength=2)
    config.update({
        "members": members,
        "temperature": round(temperature, 5),
        "threshold": round(threshold, 5),
        "threshold_rule": "middle (logit scale) of the thresholds within 0.005 of the best balanced accuracy "
                          "on the pooled out-of-fold probabilities",
        "youden_threshold_oof": round(youden, 5),
        "combine": "mean of the fold models' logits, then softmax(z / T)",
        "cross_validation": {
            "folds": folds,
            "images": int(len(items)),
            "normal": int(n_cls[0]),
            "pneumonia": int(n_cls[1]),
            "patients": int(len(set(groups))),
            "metrics": {k: round(v, 4) for k, v in metrics.items()},
            "ci95": {k: [round(a, 4), round(b, 4)] for k, (a, b) in ci.items()},
            "calibration": {k: round(v, 4) for k, v in calib.items()},
            "per_fold_auc": [m["oof_auc"] for m in members],
        },
        "training": {
            "seed": seed,
            "epochs": epochs,
            "batch": batch,
            "optimizer": f"AdamW lr {lr} one-cycle (20% warm-up), weight decay {weight_decay}",
            "loss": "cross-entropy, balanced class weights per fold, label smoothing 0.05",
            "augmentation": AUGMENTATION,
            "normalisation": "mean/std of the whole training folder at the input size",
            "wall_s": round(train_s, 1),
            "device": str(dev),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {threads} torch threads",
            "load_start": load_start,
            "load_end": _load_avg(),
            "load_max": peak,
            "epoch_s_range": [min(epoch_times), max(epoch_times)],
            "torch": torch.__version__,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
            "parameters_per_member": count_parameters(build_model(config)),
        },
    })
    config["weights"] = members[0]["weights"]
    digest_lines = "".join(f"{m['sha256']}  {m['weights']}\n" for m in members)
    (out / f"{name}.sha256").write_text(digest_lines)
    (out / f"{name}.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / f"{name}.md").write_text(model_card(config))
    say(json.dumps(config["cross_validation"], indent=1))
    return config


#: the previous default's independent result on the official Kermany test split (624 films, never
#: seen by this project's code), and the published anchor; quoted in the card beside the CV figures
V1_INDEPENDENT_TEST = {"model": "cxr_pneumonia_resnet_small v1.0", "auc": 0.960, "accuracy": 0.853}
PUBLISHED_ANCHOR = {"auc": 0.968, "accuracy": 0.928, "source": "Kermany et al., Cell 2018 (ImageNet-pretrained)"}


def model_card(config: dict, *, latency: dict | None = None) -> str:
    """Markdown model card of an ensemble config written by :func:`train_cv`.

    ``latency``: optional ``{"predict_ms": ..., "gradcam_ms": ..., "threads": ..., "side": ...}`` from
    ``bench/xray_latency.py``.
    """
    cv, t, a, i = config["cross_validation"], config["training"], config["arch"], config["input"]
    m, ci, c = cv["metrics"], cv["ci95"], cv["calibration"]
    members = config["members"]

    def fig(k: str) -> str:
        return f"{m[k]:.3f} ({ci[k][0]:.3f}–{ci[k][1]:.3f})"

    lat = ""
    if latency:
        lat = (f"\nCPU latency ({latency['threads']} torch thread, a {latency['side']}² film, all members): "
               f"predict {latency['predict_ms']:.1f} ms, predict + Grad-CAM {latency['gradcam_ms']:.1f} ms "
               f"(`bench/xray_latency.py`; {latency.get('note', '')}).\n")
    return f"""# {config["name"]} v{config["version"]}: pediatric chest X-ray pneumonia classifier (default)

**For demonstration and research only. Not a medical device; not for diagnosis or patient care.**

## What changed from v1.0

v1.0 reported AUC 0.997 / accuracy 0.978 on a split carved from the training folder, with its threshold
tuned there. **An independent test on the official 624-film Kermany test split gave v1.0 AUC
{V1_INDEPENDENT_TEST["auc"]:.3f} and accuracy {V1_INDEPENDENT_TEST["accuracy"]:.3f}**; the published anchor is
AUC {PUBLISHED_ANCHOR["auc"]} / accuracy {PUBLISHED_ANCHOR["accuracy"]:.1%} ({PUBLISHED_ANCHOR["source"]}).
The gap is generalisation to new patients and an optimistic threshold. v2.0 addresses both as far as the
training folder allows: augmentation that mimics acquisition shift (blur, resolution loss, noise, contrast,
gamma), an ensemble of {len(members)} networks, each trained on different patients, and a threshold chosen
on pooled out-of-fold predictions by a rule that tolerates small shifts (below).
**v2.0 has not been tested on the official split** (this project does not have it): the figures below are
cross-validated on the training folder and are expected to be higher than an independent test would give.

## Data

The training split of D. Kermany, K. Zhang, M. Goldbaum et al., "Labeled Optical Coherence Tomography (OCT)
and Chest X-Ray Images for Classification", Mendeley Data, v2, 2018, doi:10.17632/rscbjbr9sj.2, licence
CC BY 4.0 (Kermany et al., Cell 172(5), 2018): {cv["images"]:,} frontal films ({cv["normal"]:,} NORMAL,
{cv["pneumonia"]:,} PNEUMONIA) of {cv["patients"]:,} children aged 1–5 from Guangzhou Women and Children's
Medical Center, as 224×224 copies. The images are not distributed with this project.

## Cross-validated performance (patient-grouped {cv["folds"]}-fold)

Patients (file-name groups: `personN_*`; normal films by their `IM-xxxx` prefix) are dealt into
{cv["folds"]} folds; each member is trained on {cv["folds"] - 1} folds and predicts the third. Pooled
out-of-fold (OOF) predictions of all {cv["images"]:,} films, at the shipped threshold, with 95 % intervals
from 1,000 patient-level bootstrap resamples. **The temperature and the threshold were fitted on these same
OOF predictions**, so the accuracy-type figures are in-distribution (AUC does not depend on them).

| AUC | accuracy | sensitivity | specificity | PPV | NPV |
|---|---|---|---|---|---|
| {fig("auc")} | {fig("accuracy")} | {fig("sensitivity")} | {fig("specificity")} | {fig("ppv")} | {fig("npv")} |

Per-fold AUC: {", ".join(f"{v:.4f}" for v in cv["per_fold_auc"])}. The shipped model averages the
{len(members)} members' logits, so it is not exactly any fold's model: the OOF figures describe the members
on patients they never saw.

Calibration (OOF): temperature T = {config["temperature"]}; NLL {c["nll_before"]} → {c["nll_after"]},
ECE {c["ece_before"]} → {c["ece_after"]}, Brier {c["brier_after"]}.

## Model

- {len(members)} members of `engine.xray.model.CXRNet` (stem stride {a["stem_stride"]}, widths
  {", ".join(str(w) for w in a["widths"])}, strides {", ".join(str(s) for s in a["strides"])}, BatchNorm,
  dropout {a["dropout"]}), {t["parameters_per_member"]:,} parameters each; weights
  {", ".join(f"`{mm['weights']}`" for mm in members)} (PyTorch state_dicts, `torch.load(...,
  weights_only=True)`, SHA-256 in `{config["name"]}.sha256`).
- Input: one grey channel, {i["size"]}×{i["size"]} (resized without keeping the aspect ratio, as the
  training copies were), [0, 1] normalised as (x − {i["mean"]}) / {i["std"]}; DICOM through the modality LUT
  and the header's window (see the README), never the display settings.
- Output: {config["combine"]}, T = {config["temperature"]}. Threshold {config["threshold"]}:
  {config["threshold_rule"]} (Youden's J on the same OOF would give {config["youden_threshold_oof"]}).
- Out-of-domain films (by the DICOM header: not CR/DX, not a chest, not frontal, not a child) are not
  assessed: no label is shown.

## Training

From scratch (no pretraining), seed {t["seed"]}, {t["epochs"]} epochs per member, batch {t["batch"]},
{t["optimizer"]}; {t["loss"]}. Augmentation: {t["augmentation"]}. Normalisation: {t["normalisation"]}.
Wall time {t["wall_s"] / 60:.1f} min for all members on {t["device"]} ({t["machine"]}; load average
{t["load_start"]} at start, {t["load_end"]} at end), torch {t["torch"]}, {t["date"]}. Reproduce with
`engine.xray.train_cv.train_cv` (see the module docstring).
{lat}
## Limitations

- One hospital, one age group, one acquisition chain: no external validation. Expect lower accuracy on
  other sites, adults, portable films and other detectors.
- The classes in the data are pneumonia (bacterial and viral) vs normal only; other findings are unseen.
- The threshold trades sensitivity for specificity on this data's prevalence (74 % pneumonia); a different
  prevalence changes the predictive values.
"""
