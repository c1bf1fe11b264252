"""Restoration with the Deep Image Prior.

``corruptions`` (ImageNet-C and the ES-WMV paper's noise), ``operators`` (the forward models A),
``priors`` (the networks), ``stopping`` (ES-WMV / ES-EMV), ``presets``, ``solver`` (:class:`DIPSolver`),
``inputs`` (a run's arrays from user choices), ``workflow`` (the ``restore`` job) and ``samples``.
"""
