"""Worker processes that can die, and signals that reach them (``--executor process``).

A ``concurrent.futures`` pool breaks as a whole when one worker dies (``os._exit`` in a
plug-in's hook, a signal, the kernel's out-of-memory killer): every pending future fails
with ``BrokenProcessPool`` and the other workers are terminated. Here that costs only the
runs the dead worker held: each run's ``status.json`` names the worker that trains it
(``pid``), the survivors are stopped gracefully (their runs marked ``interrupted``), the
dead worker's runs are marked ``failed`` with the reason, and the rest go on in a fresh
pool. ``--resume`` trains the failed ones again.

Signals: the workers start with SIGINT ignored, so a Ctrl-C while they import prints no
traceback; once started, an interruption (Ctrl-C, or SIGTERM / SIGHUP forwarded by the
parent as SIGINT) stops the task a worker is running (its runs are marked ``interrupted``)
and is ignored between tasks. A SIGTERM sent to a worker itself ends its task the same way
and then the worker.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aebench.errors import StopSignal

#: how often one group is started again after its worker was stopped (not killed) under it
MAX_RESTARTS = 2

_IN_TASK = False  # in a worker: whether a task is running (an interruption then stops it)
_STOPPING: Any = None  # in a worker: the signal stopping the parent, shared (0: none; queued tasks then start no run)


# ------------------------------------------------------------------------ in a worker
def _on_signal(signum: int, frame: Any) -> None:
    global _IN_TASK
    if not _IN_TASK:  # idle: a SIGTERM ends the worker, anything else is not its business
        if signum == signal.SIGTERM:
            os._exit(128 + signum)
        return
    _IN_TASK = False  # once per task: a second Ctrl-C must not interrupt the marking of its runs
    if signum == signal.SIGINT and _STOPPING is not None and _STOPPING.value:
        raise _Forwarded(_STOPPING.value)  # from a parent that SIGTERM / SIGHUP stopped: say which
    raise StopSignal(signum)


class _Forwarded(StopSignal):
    """The parent's stop, passed on: the task ends, the worker stays for the pool's shutdown."""


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"aebench: warning: {message}", file=sys.stderr)


def init_worker(stopping: Any, init: Callable[..., None], *args: Any) -> None:
    """The pool's initializer: signals as described above, one-line warnings, then ``init``."""
    global _STOPPING
    _STOPPING = stopping
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal is the parent's to report
    warnings.showwarning = _one_line_warning
    # tqdm would make a multiprocessing lock (a named semaphore) for its (disabled) bars here; one
    # left by a worker that dies is reported by Python's resource tracker as "leaked" at exit
    import threading

    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    init(*args)


def run_task(fn: Callable[..., list[str]], group: list, **kwargs: Any) -> list[str]:
    """Run ``fn(group, **kwargs)`` in a worker, interruptible; a SIGTERM ends the worker after."""
    global _IN_TASK
    _IN_TASK = True  # first: a stop signalled from here on interrupts; one signalled before set _STOPPING
    try:
        if _STOPPING is not None and _STOPPING.value:
            raise KeyboardInterrupt  # queued before the stop: start no run
        return fn(group, **kwargs)
    except StopSignal as stop:
        # a SIGTERM sent to this worker: its runs are marked, now do what SIGTERM asked
        if stop.signum == signal.SIGTERM and not isinstance(stop, _Forwarded):
            sys.stderr.flush()
            os._exit(128 + stop.signum)
        raise KeyboardInterrupt from None
    finally:
        _IN_TASK = False


# ------------------------------------------------------------------------ in the parent
@contextmanager
def interruptions_held() -> Iterator[None]:
    """Ignore SIGINT while workers are spawned: they inherit the ignored signal, so a Ctrl-C
    during their imports cannot print tracebacks (Python keeps an ignored SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def describe_death(exitcode: int | None) -> str:
    """Why a worker ended, in words, with a hint for the out-of-memory killer."""
    if exitcode is None:
        return "worker process died"
    if exitcode >= 0:
        return f"worker process died: exit {exitcode}"
    signum = -exitcode
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    reason = f"worker process died: killed by signal {signum} ({name})"
    if signum == signal.SIGKILL:
        reason += (
            "; if nobody sent it, the kernel's out-of-memory killer may have: try fewer --workers or a smaller model"
        )
    return reason


def _status(run_dir: Path) -> dict[str, Any]:
    try:
        info = json.loads((run_dir / "status.json").read_text())
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def map_groups(
    groups: list[list],
    kwargs: dict[str, Any],
    on_done: Callable[[Any, str], None],
    *,
    fn: Callable[..., list[str]],
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple,
    mark_failed: Callable[[Any, str], None],
    lock: Any = None,
) -> None:
    """Run ``fn(group, **kwargs)`` for every group in worker processes, calling ``on_done(run,
    status)`` per run; a worker's death fails only its own runs (see the module's doc)."""
    from concurrent.futures.process import BrokenProcessPool

    out = Path(kwargs["out"])
    remaining = list(groups)
    restarts: dict[str, int] = {}
    while remaining:
        pool, procs, futures = _start_pool(remaining, kwargs, fn, workers, initializer, initargs, lock)
        broken = False
        try:
            from concurrent.futures import as_completed

            for fut in as_completed(futures):
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    broken = True
                    break
                group = futures[fut]
                remaining = [g for g in remaining if g is not group]
                for run, status in zip(group, result):
                    on_done(run, status)
        except BaseException as exc:  # Ctrl-C, SIGTERM, SIGHUP: the workers mark their runs interrupted
            _stop_workers(pool, procs, exc.signum if isinstance(exc, StopSignal) else signal.SIGINT)
            raise
        if not broken:
            pool.shutdown(wait=True)
            return
        pool.shutdown(wait=True)  # the pool has stopped its other workers (their runs: interrupted)
        remaining = _after_death(remaining, procs, out, on_done, mark_failed, restarts)


def _start_pool(remaining, kwargs, fn, workers, initializer, initargs, lock):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")  # fork after torch has started threads is unsafe
    stopping = ctx.Value("i", 0, lock=False)  # no lock: no semaphore left behind by a worker that dies
    with interruptions_held():
        pool = ProcessPoolExecutor(
            min(workers, len(remaining)),
            mp_context=ctx,
            initializer=init_worker,
            initargs=(stopping, initializer, *initargs),
        )
        futures = {pool.submit(run_task, fn, group, **kwargs): group for group in remaining}
    pool.aebench_stopping = stopping  # type: ignore[attr-defined]
    procs = dict(getattr(pool, "_processes", {}) or {})
    if lock is not None:  # the lock file names the workers; a later run waits for them
        lock.add_workers(list(procs))
    return pool, procs, futures


def _stop_workers(pool, procs: dict, signum: int) -> None:
    """Tell every worker to stop its task (SIGINT; queued tasks see the event and start no
    run), then wait for them to mark their runs."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        pool.aebench_stopping.value = int(signum)
        for pid, proc in procs.items():
            if proc.exitcode is None:
                try:
                    os.kill(pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        pool.shutdown(wait=True, cancel_futures=True)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _after_death(remaining, procs, out, on_done, mark_failed, restarts) -> list[list]:
    """After a broken pool: runs a dead worker held are failed; everything else is run again."""
    # the pool stops the survivors with SIGTERM: those exits are no deaths (their runs go again)
    stopped = (128 + signal.SIGTERM, -signal.SIGTERM)
    dead = {pid: describe_death(p.exitcode) for pid, p in procs.items() if p.exitcode not in stopped}
    again, failed = [], {}
    for group in remaining:
        held = [(run, _status(out / "runs" / run.run_id)) for run in group]
        if all(info.get("status") == "done" for _, info in held):  # finished as the pool broke
            for run, _ in held:
                on_done(run, "done")
            continue
        killers = [info["pid"] for _, info in held if info.get("status") == "running" and info.get("pid") in dead]
        key = group[0].run_id
        restarts[key] = restarts.get(key, 0) + (not killers)
        if killers or restarts[key] > MAX_RESTARTS:
            # died hard under these runs (nothing could mark them), or stopped under them again and again
            reason = dead[killers[0]] if killers else "worker process was stopped repeatedly while training it"
            for run, _ in held:
                mark_failed(run, reason)
                on_done(run, "failed")
                failed.setdefault(reason, []).append(run.run_id)
            continue
        again.append(group)
    for reason, run_ids in failed.items():  # one line per death
        warnings.warn(
            f"{reason} while training {', '.join(run_ids)}: marked failed; --resume runs them again.", stacklevel=2
        )
    return again
