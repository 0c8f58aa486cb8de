"""Reliability, third round (issue 28): the newer surfaces held to the same promise as the old.

Checkpoint stores, cluster pre-flight, plug-in report declarations and odd names: bad input is
exit 2 and one paragraph with nothing written; a fault loses nothing, leaves no run ``running``
and resumes; no secret is echoed; a plug-in cannot take a run or a report down. Each test uses
the real component: a real kill -9, real fsspec stores, real read-only mounts, a real FIFO.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY, write_spec

import aebench

TWO = TINY.replace("seeds = [0]", "seeds = [0, 1]")


def _status(out: Path, run_id: str) -> dict:
    return json.loads((out / "runs" / run_id / "status.json").read_text())


def _statuses(out: Path) -> list[str]:
    with aebench.load_results(out) as ds:
        return [str(s) for s in ds["status"].values.ravel()]


def _wait_for(cond, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


# ------------------------------------------------- 1. a kill during the very first write
SLOW_FIRST_WRITE = """
import sys, time
from pathlib import Path
from aebench.atomic import atomic_write
from aebench.execution.output import OutputLock

out = Path(sys.argv[1])
out.mkdir()
with OutputLock(out):
    def slow(p):
        p.write_text("name = ")
        time.sleep(600)
    atomic_write(out / "spec.toml", slow)
"""


def test_a_kill_during_the_first_write_leaves_a_folder_that_runs_and_resumes(tmp_path, tiny_spec, cli):
    """kill -9 in the middle of the first atomic write of spec.toml: its temporary and .lock stay behind."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_FIRST_WRITE, str(out)])
    _wait_for(lambda: out.is_dir() and any(p.name.startswith(".spec.toml.") for p in out.iterdir()))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = sorted(p.name for p in out.iterdir())
    assert left[0] == ".lock" and left[1].startswith(".spec.toml.") and left[1].endswith(".tmp"), left
    code, _, err = cli("run", tiny_spec, "--out", out, "--quiet", "--resume")
    assert code == 0, err
    assert not list(out.rglob("*.tmp")) and _statuses(out) == ["done"]
    # a plain re-run of a folder where the kill came first is not called foreign either
    out2 = tmp_path / "out2"
    out2.mkdir()
    (out2 / ".lock").write_text("")
    (out2 / ".spec.toml.k3j4h5g6.tmp").write_text("name = ")
    code, _, err = cli("run", tiny_spec, "--out", out2, "--quiet")
    assert code == 0 and "did not write" not in err, err
    # a foreign file beside them is still foreign, and nothing of it is touched
    out3 = tmp_path / "out3"
    out3.mkdir()
    (out3 / ".spec.toml.k3j4h5g6.tmp").write_text("name = ")
    (out3 / "notes.txt").write_text("mine")
    code, _, err = cli("run", tiny_spec, "--out", out3, "--quiet")
    assert code == 2 and "notes.txt" in err and ".spec.toml" not in err, err
    assert sorted(p.name for p in out3.iterdir()) == [".spec.toml.k3j4h5g6.tmp", "notes.txt"]
