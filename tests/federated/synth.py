"""A tiny generated chest-film folder: NORMAL/ and PNEUMONIA/ PNGs, pneumonia films with a bright blob."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_folder(root: Path, per_class: int = 16, size: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    for lab in ("NORMAL", "PNEUMONIA"):
        (root / lab).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = 0.4 + 0.1 * rng.standard_normal((size, size))
            if lab == "PNEUMONIA":
                cy, cx = rng.uniform(0.3, 0.7, 2)
                img += 0.4 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02)
            name = f"person{i}_bacteria_{i}.png" if lab == "PNEUMONIA" else f"IM-{i:04d}-0001.png"
            Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(root / lab / name)
    return root
