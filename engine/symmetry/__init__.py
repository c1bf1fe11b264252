"""Symmetry breaking for learned Fourier phase retrieval (in progress: data and network only).

``data``: the in-house object generator, the four symmetry settings (none, flip, shift, shift+flip),
``fourier_magnitude`` and ``canonicalize`` (the symmetry-breaking restriction of a training set).
``model``: the small U-Net. Training, the error table and the page are not built yet.
"""
