"""Batches: many inputs (restore, pr, xray), one Ray task each, one run folder each, ``batch.json``."""

from engine.batch.runner import INSTALL_HINT, KINDS, run_batch, run_item, run_name

__all__ = ["INSTALL_HINT", "KINDS", "run_batch", "run_item", "run_name"]
