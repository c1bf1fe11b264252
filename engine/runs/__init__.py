"""Run folders: spec, status, metrics, snapshots, checkpoints, the run lock and results of one run."""

from engine.runs.store import KIND_LABELS, Run, RunLock, RunStore, check_run_name, default_runs_root

__all__ = ["KIND_LABELS", "Run", "RunLock", "RunStore", "check_run_name", "default_runs_root"]
