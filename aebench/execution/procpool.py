"""Worker processes that can die, and signals that reach them (``--executor process``).

A ``concurrent.futures`` pool breaks as a whole when one worker dies (``os._exit`` in a
plug-in's hook, a signal, the kernel's out-of-memory killer): every pending future fails
with ``BrokenProcessPool`` and the other workers are terminated. Here that costs only the
runs the dead worker held: each worker writes its pid into a shared array when it starts a
task (the client records it in the runs' ``status.json``), the survivors are stopped
gracefully (their tasks go again), the dead worker's runs are marked ``failed`` with the
reason, and the rest go on in a fresh pool. ``--resume`` trains the failed ones again.

Signals: the workers start with SIGINT ignored, so a Ctrl-C while they import prints no
traceback; once started, an interruption (Ctrl-C, or SIGTERM / SIGHUP forwarded by the
parent as SIGINT) stops the task a worker is running (its runs are marked ``interrupted``)
and is ignored between tasks. A SIGTERM sent to a worker itself ends its task the same way
and then the worker.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aebench.errors import StopSignal

#: how often one group is started again after its worker was stopped (not killed) under it
MAX_RESTARTS = 2

_IN_TASK = False  # in a worker: whether a task is running (an interruption then stops it)
_STOPPING: Any = None  # in a worker: the signal stopping the parent, shared (0: none; queued tasks then start no run)
_STARTED: Any = None  # in a worker: one slot per task of the pool, set to the pid of the worker that takes it


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


def init_worker(stopping: Any, started: Any, init: Callable[..., None], *args: Any) -> None:
    """The pool's initializer: signals as described above, one-line warnings, then ``init``."""
    global _STOPPING, _STARTED
    _STOPPING, _STARTED = stopping, started
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal is the parent's to report
    warnings.showwarning = _one_line_warning
    # tqdm would make a multiprocessing lock (a named semaphore) for its (disabled) bars here; one
    # left by a worker that dies is reported by Python's resource tracker as "leaked" at exit
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    init(*args)


def run_task(fn: Callable[..., list], index: int, task: Any, **kwargs: Any) -> list:
    """Run ``fn(task, **kwargs)`` in a worker, interruptible; a SIGTERM ends the worker after."""
    global _IN_TASK
    _IN_TASK = True  # first: a stop signalled from here on interrupts; one signalled before set _STOPPING
    try:
        if _STOPPING is not None and _STOPPING.value:
            raise KeyboardInterrupt  # queued before the stop: start no run
        if _STARTED is not None:
            _STARTED[index] = os.getpid()
        return fn(task, **kwargs)
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
    during their imports cannot print tracebacks (Python keeps an ignored SIGINT ignored).
    Outside the main thread (the Workbench launches from its own) signals are not ours to set."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _main_thread() -> bool:
    """Python lets only the main thread install signal handlers."""
    return threading.current_thread() is threading.main_thread()


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


def map_tasks(
    tasks: list,
    kwargs: dict[str, Any],
    on_result: Callable[[Any, list], None],
    *,
    fn: Callable[..., list],
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple | Callable[[int], tuple],
    on_worker: Callable[[Any, int], None],
    on_death: Callable[[Any, str], None],
    lock: Any = None,
    stop: Any = None,
) -> None:
    """Run ``fn(task, **kwargs)`` for every task in worker processes, calling ``on_result(task,
    results)``; ``on_worker(task, pid)`` when a worker takes a task; a worker's death calls
    ``on_death(task, reason)`` for its own task only (see the module's doc). A set ``stop``
    event (the Workbench's Stop) stops the workers as Ctrl-C does."""
    from concurrent.futures.process import BrokenProcessPool

    remaining = list(tasks)
    restarts: dict[int, int] = {}
    while remaining:
        pool, procs, futures, started = _start_pool(remaining, kwargs, fn, workers, initializer, initargs, lock)
        seen: set[int] = set()
        recorded: set[int] = set()
        broken = False
        try:
            from concurrent.futures import FIRST_COMPLETED, wait

            pending = set(futures)
            while pending and not broken:
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt  # the workers stop and mark their runs below
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                _note_started(futures, started, seen, on_worker)
                for fut in done:
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    index, task = futures[fut]
                    recorded.add(index)
                    on_result(task, result)
        except BaseException as exc:  # Ctrl-C, SIGTERM, SIGHUP: the workers stop their tasks
            _stop_workers(pool, procs, exc.signum if isinstance(exc, StopSignal) else signal.SIGINT)
            raise
        if not broken:
            pool.shutdown(wait=True)
            return
        pool.shutdown(wait=True)  # the pool has stopped its other workers (their tasks go again)
        _note_started(futures, started, seen, on_worker)
        remaining = _after_death(futures, recorded, started, procs, on_result, on_death, restarts)


def _note_started(futures: dict, started: Any, seen: set[int], on_worker: Callable[[Any, int], None]) -> None:
    for index, task in futures.values():
        if index not in seen and started[index]:
            seen.add(index)
            on_worker(task, started[index])


def _start_pool(remaining, kwargs, fn, workers, initializer, initargs, lock):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")  # fork after torch has started threads is unsafe
    # no locks: no semaphore left behind by a worker that dies
    stopping = ctx.Value("i", 0, lock=False)
    started = ctx.Array("q", len(remaining), lock=False)
    n = min(workers, len(remaining))
    counter = ctx.Value("i", 0)  # each worker's index (which device it is pinned to)
    with interruptions_held():
        pool = ProcessPoolExecutor(
            n,
            mp_context=ctx,
            initializer=init_worker,
            initargs=(stopping, started, _indexed, initializer, counter, initargs),
        )
        futures = {pool.submit(run_task, fn, i, task, **kwargs): (i, task) for i, task in enumerate(remaining)}
    pool.aebench_stopping = stopping  # type: ignore[attr-defined]
    procs = dict(getattr(pool, "_processes", {}) or {})
    if lock is not None:  # the lock file names the workers; a later run waits for them
        lock.add_workers(list(procs))
    return pool, procs, futures, started


def _indexed(initializer: Callable[..., None], counter: Any, initargs: tuple | Callable[[int], tuple]) -> None:
    """Call ``initializer`` with this worker's arguments: ``initargs(index)`` when it is a function."""
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    initializer(*(initargs(index) if callable(initargs) else initargs))


def _stop_workers(pool, procs: dict, signum: int) -> None:
    """Tell every worker to stop its task (SIGINT; queued tasks see the event and start no
    run), then wait for them to mark their runs."""
    stoppers = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if _main_thread() else ()
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in stoppers}
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


def _after_death(futures, recorded, started, procs, on_result, on_death, restarts) -> list:
    """After a broken pool: a task a dead worker held is failed; everything else is run again."""
    from concurrent.futures.process import BrokenProcessPool

    # the pool stops the survivors with SIGTERM: those exits are no deaths (their tasks go again)
    stopped = (128 + signal.SIGTERM, -signal.SIGTERM)
    dead = {pid: describe_death(p.exitcode) for pid, p in procs.items() if p.exitcode not in stopped}
    again, failed = [], {}
    for fut, (index, task) in futures.items():
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            if index not in recorded:  # finished as the pool broke
                on_result(task, fut.result())
            continue
        if fut.done() and not fut.cancelled() and not isinstance(fut.exception(), BrokenProcessPool):
            raise fut.exception()
        holder = started[index]
        key = task.key
        restarts[key] = restarts.get(key, 0) + (holder not in dead)
        if holder in dead or restarts[key] > MAX_RESTARTS:
            # died hard under this task (nothing could mark it), or stopped under it again and again
            reason = dead[holder] if holder in dead else "worker process was stopped repeatedly while training it"
            on_death(task, reason)
            failed.setdefault(reason, []).extend(r.run_id for r in task.runs)
            continue
        again.append(task)
    for reason, run_ids in failed.items():  # one line per death
        warnings.warn(
            f"{reason} while training {', '.join(run_ids)}: marked failed; --resume runs them again.", stacklevel=2
        )
    return again
