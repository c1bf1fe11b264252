"""Simulators that make test data with a known truth (diffraction patterns, ...)."""
