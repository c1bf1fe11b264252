"""Generalized phase retrieval: recover x from |a_k^* x|, up to a global phase.

``measurements`` (Gaussian and coded-diffraction operators), ``initializers`` (spectral and other
first estimates), ``algorithms`` (WF/TWF/RWF/AF/TAF/GS and :class:`~engine.gpr.algorithms.GPRSolver`),
``sweep`` (phase transitions), ``teaching`` (symmetry and landscape panels) and ``workflow`` (the
``gpr`` and ``gpr_sweep`` jobs).
"""
