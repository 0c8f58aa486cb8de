"""Running a spec: pre-flight, the output folder and its lock, the run lifecycle (train on a
worker, record on the client), executors (local, process, dask: built-in plug-ins of the
``executor`` kind)."""

from aebench.execution.api import group_runs, run, statuses
from aebench.execution.lifecycle import Job, RunResult, Task
from aebench.execution.preflight import preflight

__all__ = ["Job", "RunResult", "Task", "group_runs", "preflight", "run", "statuses"]
