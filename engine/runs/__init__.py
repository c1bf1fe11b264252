"""Run folders: spec, status, metrics, snapshots, checkpoints and results of one run."""

from engine.runs.store import Run, RunStore, default_runs_root

__all__ = ["Run", "RunStore", "default_runs_root"]
