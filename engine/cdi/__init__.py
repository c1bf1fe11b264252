"""Fourier phase retrieval for coherent diffraction imaging (CDI).

``fourier`` (the magnitude model and FFT helpers), ``recipe`` (PyNX-style operator strings),
``solver`` (:class:`CDISolver`: ER/HIO/RAAR + shrink-wrap, batched starts), ``readers``
(NPY/NPZ/TIFF/EDF/CXI/HDF5), ``simulate``, ``registration``, ``prtf`` and ``workflow`` (the ``cdi`` job).
"""
