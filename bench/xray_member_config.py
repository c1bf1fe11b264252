"""Write one fold member of the default X-ray ensemble as a model of its own, with its held-out films.

The ensemble's members were each trained on two of three patient folds; member K never saw fold K. This
writes ``OUT/cxr_pneumonia_cv_ensemble_memberK.json`` (the ensemble's config with that member only, its
temperature and threshold unchanged), a copy of its weights and ``..._memberK_val_split.txt`` (fold K's
films, from the recorded out-of-fold table), so that ``inverse-studio xray robustness DIR --model
OUT/cxr_pneumonia_cv_ensemble_memberK.json`` scores the default model's member on patients it never saw::

    python bench/xray_member_config.py --member 0 --out /tmp/member0
    inverse-studio xray robustness ../shared/data/cxr-pneumonia/train --out /tmp/rob --films 200 \\
        --dip-films 0 --model /tmp/member0/cxr_pneumonia_cv_ensemble_member0.json --threads 1
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from engine.xray.predict import DEFAULT_MODEL


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--member", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    cfg = json.loads(DEFAULT_MODEL.read_text())
    (m,) = [m for m in cfg["members"] if m["fold"] == a.member]
    name = f"{cfg['name']}_member{a.member}"
    a.out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(DEFAULT_MODEL.parent / m["weights"], a.out / m["weights"])
    (a.out / f"{name}.json").write_text(json.dumps({**cfg, "name": name, "members": [m]}, indent=1))
    rows = [line.split(",") for line in (DEFAULT_MODEL.parent / f"{cfg['name']}_oof.csv").read_text().splitlines()[1:]]
    films = [r[1] for r in rows if int(r[0]) == a.member]
    (a.out / f"{name}_val_split.txt").write_text("\n".join(films) + "\n")
    print(f"{name}: {len(films)} held-out films in {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
