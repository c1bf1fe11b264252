"""Workflows: what a job runs. Each module has ``run(ctx: JobContext) -> dict`` (the summary)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

#: workflow kind -> module implementing ``run(ctx)``
WORKFLOWS: dict[str, str] = {
    "restore": "engine.workflows.restore",
    "cdi": "engine.workflows.cdi",
    "gpr": "engine.workflows.gpr",
    "gpr_sweep": "engine.workflows.gpr_sweep",
    "xray": "engine.workflows.xray",
}


def get_workflow(kind: str) -> Callable[[Any], dict]:
    """The ``run`` function of a workflow kind."""
    if kind not in WORKFLOWS:
        raise ValueError(f"unknown workflow {kind!r}; expected one of {', '.join(WORKFLOWS)}")
    return importlib.import_module(WORKFLOWS[kind]).run
