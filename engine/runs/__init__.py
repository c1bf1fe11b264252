"""Run folders: spec, status, metrics, snapshots, checkpoints, the run lock and results of one run."""

from engine.runs.store import Run, RunLock, RunStore, default_runs_root

__all__ = ["Run", "RunLock", "RunStore", "default_runs_root"]
