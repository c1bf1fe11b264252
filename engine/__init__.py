"""Inverse Studio's engine: imaging inverse problems in PyTorch, with no UI in it.

A map of the packages::

    core/   errors, the Operator base (A, A_adjoint), device choice, size-capped reading, image I/O,
            metrics (reference first), colour ramps and overlays, seeds
    runs/   a run folder: spec, status, metrics, arrays, snapshots, checkpoint
    jobs/   the job manager (queue, workers, cancel, resume, live snapshots) and the job registry
    dip/    restoration with the Deep Image Prior: corruptions, operators, priors, ES-WMV/EMV, solver
    cdi/    Fourier phase retrieval (CDI): readers, recipes, ER/HIO/RAAR + shrink-wrap, registration, PRTF
    gpr/    generalized phase retrieval: measurements, initialisers, WF/TWF/RWF/AF/TAF/GS, sweeps, teaching
    xray/   chest X-rays: DICOM and raster reading, display, de-identification, domain checks, classifier,
            saliency, training
    mri/    single-coil Cartesian MRI: k-space operators, masks, zero-filled, TV, DIP reconstruction
    federated/  the federated-learning demo on chest X-rays (Flower): simulated sites, FedAvg/FedBN
    batch/  many inputs as Ray tasks, one run folder each
    symmetry/   symmetry breaking for learned phase retrieval: data, U-Net, training, error modulo symmetries
    cli/    the ``inverse-studio`` command

The names below load on first use, so ``import engine`` stays cheap::

    from engine import DIPSolver, restore, CDISolver, reconstruct, GPRSolver, Classifier

Nothing here imports streamlit or the ``ui`` package.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

#: public name -> module that defines it
_API: dict[str, str] = {
    # shared
    "InputError": "engine.core.errors",
    "Operator": "engine.core.operator",
    "pick_device": "engine.core.device",
    "psnr": "engine.core.metrics",
    "ssim": "engine.core.metrics",
    "read_image": "engine.core.imageio",
    "RunStore": "engine.runs",
    "JobManager": "engine.jobs",
    # restoration
    "DIPSolver": "engine.dip.solver",
    "restore": "engine.dip.solver",
    "corrupt": "engine.dip.corruptions",
    # phase retrieval (CDI)
    "CDISolver": "engine.cdi.solver",
    "reconstruct": "engine.cdi.workflow",
    "load_diffraction": "engine.cdi.readers",
    "simulate_pattern": "engine.cdi.simulate",
    # generalized phase retrieval
    "GPRSolver": "engine.gpr.algorithms",
    "make_measurement": "engine.gpr.measurements",
    # chest X-rays
    "Classifier": "engine.xray.predict",
    "read_xray": "engine.xray.display",
    # MRI
    "KSpace": "engine.mri.kspace",
    "make_mask": "engine.mri.kspace",
    "simulate_kspace": "engine.mri.kspace",
    "zero_filled": "engine.mri.kspace",
    "tv_reconstruct": "engine.mri.tv",
    # DIP as a phase-retrieval prior (solver only; not yet on the pages or the CLI)
    "DIPPRSolver": "engine.cdi.dip_prior",
    # symmetry breaking for learned phase retrieval
    "train_table": "engine.symmetry.train",
    "error_modulo": "engine.symmetry.train",
    # beyond one machine
    "run_batch": "engine.batch",
    "FederationSpec": "engine.federated.sites",
    "run_demo": "engine.federated.train",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
