"""Generalized phase retrieval: recover x from |a_k^* x|, up to a global phase.

``measurements`` (Gaussian and coded-diffraction operators), ``algorithms`` (initialisers, WF/TWF/RWF/
AF/TAF/GS), ``sweep`` (phase transitions), ``teaching`` (symmetry and landscape panels) and
``workflow`` (the ``gpr`` and ``gpr_sweep`` jobs).
"""
