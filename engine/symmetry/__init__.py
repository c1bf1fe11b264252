"""Symmetry breaking for learned Fourier phase retrieval (Tayal et al., 2020).

``data``: the in-house object generator, the four symmetry settings (none, flip, shift, shift+flip),
``fourier_magnitude`` and ``canonicalize`` (the symmetry-breaking restriction of a training set).
``model``: the small U-Net. ``train``: the plain/restricted pair per setting, the error modulo the
symmetries, the shipped weights and table in ``assets/symmetry/`` (the page ``ui/screens/symmetry.py``).
"""
