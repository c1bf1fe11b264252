"""Which function runs a job of each kind: ``run(ctx: JobContext) -> dict`` (the summary), one per domain."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from engine.core.errors import InputError

#: job kind -> ``"module"`` (its ``run``) or ``"module:function"``
WORKFLOWS: dict[str, str] = {
    "restore": "engine.dip.workflow",
    "cdi": "engine.cdi.workflow",
    "gpr": "engine.gpr.workflow",
    "gpr_sweep": "engine.gpr.workflow:run_sweep",
    "xray": "engine.xray.workflow",
    "mri": "engine.mri.workflow",
    "federated": "engine.federated.workflow",
}


#: kinds of seconds-long jobs: they have their own lane per device, so they never wait behind a long
#: DIP or CDI run (two heavy jobs still take turns on one device)
LIGHT_KINDS = frozenset({"gpr", "xray"})


def get_workflow(kind: str) -> Callable[[Any], dict]:
    """The ``run`` function of a workflow kind; :class:`InputError` (a ``ValueError``) for an unknown kind."""
    if kind not in WORKFLOWS:
        raise InputError(f"unknown workflow {kind!r}; expected one of {', '.join(WORKFLOWS)}")
    module, _, func = WORKFLOWS[kind].partition(":")
    return getattr(importlib.import_module(module), func or "run")
