"""Early-stopping detectors: ES-WMV and ES-EMV (variance of the reconstructions)."""

from engine.stopping.variance import EMV, WMV, make_detector

__all__ = ["EMV", "WMV", "make_detector"]
