"""Running a spec: pre-flight, the output folder and its lock, the run lifecycle (train on a
worker, record on the client), executors (local, process, dask)."""

from aebench.execution.api import group_runs, run, statuses
from aebench.execution.executors import EXECUTORS, make_executor
from aebench.execution.preflight import preflight

__all__ = ["EXECUTORS", "group_runs", "make_executor", "preflight", "run", "statuses"]
