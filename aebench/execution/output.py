"""The output folder: opened, checked and prepared before anything runs, and locked while it does.

``--out`` must be a folder aebench can write; a folder with files aebench did not write is
refused (``--force`` writes beside them); a folder of another spec's results is refused;
``DIR/.lock`` is held for the whole run and names the worker processes.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from aebench.atomic import clean_temporaries, is_temporary, write_text
from aebench.errors import AebenchError, ResultsError, SaveError
from aebench.outdir import TOP_TEMPORARIES, check_output_tree
from aebench.spec import Spec


def prepare_out(out: Path, spec: Spec, resume: bool, force: bool = False) -> None:
    """Under the lock: aebench's own leftovers removed first (a kill during the very first write
    must not make the folder look foreign), then every check, then ``spec.toml`` written."""
    removed = clean_temporaries(out, TOP_TEMPORARIES, deep=False)
    saved = out / "spec.toml"
    # every path a run writes, at any depth (runs/<id>/ and its files too): no link, no pipe
    check_output_tree(out, [r.run_id for r in spec.runs])
    if saved.is_file():
        try:
            same = _comparable(Spec.from_text(saved.read_text(), source=str(saved)).raw) == _comparable(spec.raw)
        except AebenchError:
            same = False
        if not same:
            raise ResultsError(
                f"{out} holds the results of another spec ({saved}); choose another --out or delete that folder."
            )
        if not resume and (out / "runs").exists():
            raise ResultsError(
                f"{out} already holds runs of this spec; pass --resume to finish them, or choose another --out."
            )
    else:
        refuse_foreign(out, force)
        out.mkdir(parents=True, exist_ok=True)
        write_text(saved, spec.to_toml())
    removed += clean_temporaries(out, TOP_TEMPORARIES)  # the folder is ours: its run folders' too
    if removed:
        logging.getLogger("aebench").info("removed %d temporary files left by an interrupted write", len(removed))


def _comparable(raw: dict[str, Any]) -> dict[str, Any]:
    """A spec without what names where its published numbers came from (``published_from``, added when a
    spec file is read): a folder written before that name was kept is still this spec's own."""
    report = raw.get("report")
    if not isinstance(report, list):
        return raw
    strip = [{k: v for k, v in e.items() if k != "published_from"} if isinstance(e, dict) else e for e in report]
    return {**raw, "report": strip}


def refuse_foreign(out: Path, force: bool) -> None:
    """A folder with files but no spec of ours is someone else's: refuse it (``--force`` to write beside them)."""
    if force or not out.is_dir() or (out / "spec.toml").is_file():
        return
    # aebench's own: the lock and the temporaries of a write that was killed (removed under the lock)
    foreign = sorted(p.name for p in out.iterdir() if p.name != ".lock" and not is_temporary(p.name, TOP_TEMPORARIES))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ResultsError(
            f"{out} already holds files that aebench did not write ({shown}); choose an empty or new --out, "
            "or pass --force to write beside them."
        )


def open_out(out: Path, force: bool = False) -> None:
    """``--out`` must be a folder aebench can write: a clear error (exit 2) before anything starts."""
    if out.exists() and not out.is_dir():
        raise ResultsError(f"--out {out} is a file, not a folder; choose a folder.")
    refuse_foreign(out, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"--out {out} cannot be created ({exc.strerror or exc}).") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ResultsError(f"--out {out} is not writable (read-only folder or file system, or no permission).")


class OutputLock:
    """``DIR/.lock``: one ``aebench run`` per output directory at a time.

    A real lock: ``fcntl.flock`` on the open file, taken without waiting. The kernel
    releases it when the holder dies (however it dies), so a stale lock cannot exist and
    two processes entering at once cannot both hold it. The file records the holder's pid
    and its worker processes' pids; a new holder waits briefly for workers of a killed run
    to exit (they die with their parent) and refuses if any are still alive.
    """

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        import fcntl

        from aebench.outdir import check_own

        self.path.parent.mkdir(parents=True, exist_ok=True)
        check_own(self.path.parent, self.path)  # a link or a folder named .lock: one message, not OSError
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as exc:
            raise ResultsError(f"{self.path} cannot be opened as aebench's lock ({exc.strerror or exc}).") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _read_lock(self.path).get("pid", "?")
            raise ResultsError(
                f"{self.path.parent} is in use by another aebench run (process {holder}); "
                "wait for it or choose another --out."
            ) from None
        self.fd = fd
        try:
            _wait_for_workers(_read_lock(self.path).get("workers", []), self.path.parent)
            self._write({"pid": os.getpid(), "workers": []})
        except OSError as exc:  # a disk full before anything started: say so, not a traceback
            self.__exit__()
            raise SaveError(
                f"cannot write the lock file {self.path} ({exc.strerror or exc}); nothing was started: free some "
                "space or fix the folder, then run again."
            ) from None
        except BaseException:
            self.__exit__()
            raise
        return self

    def add_workers(self, pids: list[int]) -> None:
        """Record worker processes, so that a later run can wait for any a kill left behind."""
        if self.fd is not None:
            info = _read_lock(self.path)
            self._write({"pid": os.getpid(), "workers": sorted(set(info.get("workers", [])) | set(pids))})

    def _write(self, info: dict) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(info).encode(), 0)

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            try:
                self._write({"pid": None, "workers": []})
            except OSError:
                pass
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def _read_lock(path: Path) -> dict:
    try:
        info = json.loads(path.read_text() or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _wait_for_workers(pids: list[int], out: Path, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    alive = [p for p in pids if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _alive(p)]
    if alive:
        raise ResultsError(
            f"worker processes {alive} of an earlier run in {out} are still alive; "
            "stop them before running there again."
        )


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
