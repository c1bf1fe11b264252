"""Job manager: a queue per device, a worker thread each, cancel, resume and live snapshots."""

from engine.jobs.context import Cancelled, JobContext, LiveState
from engine.jobs.manager import JobManager, run_inline

__all__ = ["Cancelled", "JobContext", "JobManager", "LiveState", "run_inline"]
