"""The README's Python examples run as written (one per domain)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_there_is_an_example_per_domain():
    blocks = _examples()
    assert len(blocks) == 4
    for block, name in zip(blocks, ("restore", "reconstruct", "GPRSolver", "Classifier")):
        assert name in block
        assert len([ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]) <= 7


@pytest.mark.parametrize("index", range(4))
def test_example_runs(index, tmp_path):
    code = _examples()[index]
    if "pydicom.data" in code:
        pytest.importorskip("pydicom")
    env_code = "import torch; torch.set_num_threads(1)\n" + code
    out = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, cwd=tmp_path,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip(), "each example prints its result"
