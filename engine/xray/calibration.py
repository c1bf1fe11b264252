"""Score calibration, operating threshold and validation metrics with bootstrap intervals.

Temperature scaling (Guo et al., ICML 2017) divides the logits by one scalar T fitted by minimising
the negative log-likelihood on a validation split; it changes probabilities, not the ranking (AUC).
The operating threshold is chosen on the calibrated probability, by Youden's J (sens + spec - 1)
or for a stated sensitivity.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from scipy.stats import rankdata

from engine.core.seeds import numpy_rng


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature T > 0 minimising the NLL of ``softmax(logits / T)`` (searched on log T in [-3, 3])."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)

    def nll(log_t: float) -> float:
        return float(-log_softmax(z / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean())

    res = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(res.x))


def probabilities(logits: np.ndarray, temperature: float = 1.0, positive: int = 1) -> np.ndarray:
    """Probability of class ``positive`` from logits ``(N, C)`` after dividing them by ``temperature``."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)[:, positive]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); nan if one class is absent."""
    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(score)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rate, true-positive rate and thresholds (score >= t is positive), t decreasing."""
    y = np.asarray(y).astype(bool)
    t = np.unique(score)[::-1]
    s = np.asarray(score)
    tpr = np.array([(s[y] >= v).mean() for v in t])
    fpr = np.array([(s[~y] >= v).mean() for v in t])
    return fpr, tpr, t


def youden_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """Threshold maximising sensitivity + specificity - 1 (midpoint to the next lower score)."""
    fpr, tpr, t = roc_curve(y, score)
    k = int(np.argmax(tpr - fpr))
    lower = t[k + 1] if k + 1 < len(t) else t[k]
    return float((t[k] + lower) / 2)


def threshold_for_sensitivity(y: np.ndarray, score: np.ndarray, sensitivity: float) -> float:
    """Highest threshold whose sensitivity on (y, score) is at least ``sensitivity``."""
    fpr, tpr, t = roc_curve(y, score)
    ok = np.nonzero(tpr >= sensitivity)[0]
    return float(t[ok[0]]) if len(ok) else float(t[-1])


def binary_metrics(y: np.ndarray, prob: np.ndarray, threshold: float) -> dict[str, float]:
    """AUC, accuracy, sensitivity, specificity, PPV, NPV at ``threshold`` (prob >= threshold positive)."""
    y = np.asarray(y).astype(bool)
    pred = np.asarray(prob) >= threshold
    tp, tn = int((pred & y).sum()), int((~pred & ~y).sum())
    fp, fn = int((pred & ~y).sum()), int((~pred & y).sum())
    div = lambda a, b: a / b if b else float("nan")  # noqa: E731
    return {
        "auc": roc_auc(y, prob),
        "accuracy": div(tp + tn, len(y)),
        "sensitivity": div(tp, tp + fn),
        "specificity": div(tn, tn + fp),
        "ppv": div(tp, tp + fp),
        "npv": div(tn, tn + fn),
    }


def expected_calibration_error(y: np.ndarray, prob: np.ndarray, *, bins: int = 10) -> float:
    """ECE of the positive-class probability over ``bins`` equal-width bins."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(ece)


def brier(y: np.ndarray, prob: np.ndarray) -> float:
    """Mean squared error of the positive-class probability."""
    return float(np.mean((np.asarray(prob, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2))


def bootstrap_ci(
    y: np.ndarray,
    prob: np.ndarray,
    threshold: float,
    *,
    groups: np.ndarray | None = None,
    n: int = 2000,
    seed: int | np.random.Generator = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of :func:`binary_metrics` at a fixed threshold.

    When ``groups`` (patient ids) is given, whole patients are resampled, since images of one child
    are not independent.
    """
    rng = numpy_rng(seed)
    y = np.asarray(y)
    prob = np.asarray(prob)
    if groups is None:
        groups = np.arange(len(y))
    _, gidx = np.unique(np.asarray(groups), return_inverse=True)
    members = [np.nonzero(gidx == g)[0] for g in range(gidx.max() + 1)]
    rows: dict[str, list[float]] = {}
    for _ in range(n):
        pick = rng.integers(0, len(members), len(members))
        sel = np.concatenate([members[g] for g in pick])
        for k, v in binary_metrics(y[sel], prob[sel], threshold).items():
            rows.setdefault(k, []).append(v)
    a = (1 - level) / 2
    return {k: (float(np.nanquantile(v, a)), float(np.nanquantile(v, 1 - a))) for k, v in rows.items()}
