"""What every domain shares.

- :mod:`~engine.core.errors`: :class:`InputError`, the one error for problems a user can fix.
- :mod:`~engine.core.operator`: :class:`Operator`, the base of every forward model (``A``, ``A_adjoint``).
- :mod:`~engine.core.device`: :func:`pick_device`, the one device policy.
- :mod:`~engine.core.reading`: size-capped reading of untrusted files and uploads.
- :mod:`~engine.core.imageio`: reading and encoding plain images (PNG/JPEG/TIFF/NPY/NPZ).
- :mod:`~engine.core.metrics`: PSNR and SSIM, reference first.
- :mod:`~engine.core.colors`: colour ramps, heat-map overlays and complex-to-RGB rendering.
- :mod:`~engine.core.seeds`: one way to turn a ``seed`` into generators.
- :mod:`~engine.core.machine`: the machine and load a benchmark ran on.
"""

from engine.core.errors import InputError

__all__ = ["InputError"]
