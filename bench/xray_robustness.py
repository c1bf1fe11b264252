"""Natural robustness of the chest X-ray classifier on the CPU: ImageNet-C corruptions, and DIP as a front end.

Runs :func:`engine.xray.robustness.evaluate` on the model's validation split of the training folder: the 15
ImageNet-C corruptions (grey) at severities 1-5 on a balanced seeded subset of films, and the DIP front end
(preset cpu, ES-WMV) on a smaller balanced subset for the noise corruptions at severities 1, 3, 5. The
record holds the machine and its load at the start and the end (the wall time moves with the load).

Usage::

    nice -n 10 python bench/xray_robustness.py --data ../shared/data/cxr-pneumonia/train \\
        --out bench/results/xray_robustness_cpu.json [--films 200] [--dip-films 24] [--markdown FILE]

``--stop-after S`` ends the run after S seconds with what is done (``complete`` is then false).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from engine.xray.predict import MODELS_DIR
from engine.xray.robustness import DIP_DEFAULT, IMAGENET_C_15, evaluate, markdown_table

# the model with a held-out validation split listed beside it (patients it never trained on)
MODEL = MODELS_DIR / "cxr_pneumonia_resnet_small.json"


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/cxr-pneumonia/train"))
    ap.add_argument("--out", required=True, help="JSON file of the result")
    ap.add_argument("--films", type=int, default=200)
    ap.add_argument("--dip-films", type=int, default=24)
    ap.add_argument("--corruptions", type=_names, default=list(IMAGENET_C_15))
    ap.add_argument("--severities", type=_ints, default=[1, 2, 3, 4, 5])
    ap.add_argument("--dip-corruptions", type=_names, default=list(DIP_DEFAULT))
    ap.add_argument("--dip-severities", type=_ints, default=[1, 3, 5])
    ap.add_argument("--dip-max-iters", type=int, default=None)
    ap.add_argument("--no-dip-clean", action="store_true", help="do not restore the clean DIP films")
    ap.add_argument("--model", default=str(MODEL),
                    help="classifier (default: the one whose validation split ships beside it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stop-after", type=float, default=None, help="seconds; stop with what is done")
    ap.add_argument("--markdown", default=None, help="also write the tables as markdown to this file")
    a = ap.parse_args()
    t0 = time.monotonic()
    last = [0.0]

    def progress(done: int, total: int, text: str) -> None:
        now = time.monotonic() - t0
        if now - last[0] >= 30 or done == total:  # a line every 30 s is enough for a run of an hour
            last[0] = now
            print(f"[{now:7.0f} s] {done}/{total} {text}", flush=True)

    stop = (lambda: time.monotonic() - t0 > a.stop_after) if a.stop_after else None
    result = evaluate(a.data, films=a.films, dip_films=a.dip_films, corruptions=a.corruptions,
                      severities=a.severities, dip_corruptions=a.dip_corruptions, dip_severities=a.dip_severities,
                      dip_max_iters=a.dip_max_iters, dip_clean=not a.no_dip_clean, model=a.model, seed=a.seed,
                      progress=progress, cancelled=stop)
    result["command"] = "python bench/xray_robustness.py " + " ".join(sys.argv[1:])
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    table = markdown_table(result)
    if a.markdown:
        Path(a.markdown).write_text(table + "\n", encoding="utf-8")
    print(table)
    print(f"wall {result['wall_seconds']}, complete {result['complete']}, wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
