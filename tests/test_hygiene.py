"""Library hygiene (issue 26, item 7): importing aebench changes nothing of its caller's, and one
place words file-system errors for the CLI, the execution package and the Workbench."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from aebench import errors


@pytest.mark.parametrize("chosen", ["pdf", None])
def test_importing_plots_leaves_the_backend_alone(chosen):
    """A notebook's (or a GUI user's) backend is theirs: aebench.plots must not switch it to Agg."""
    code = (
        "import os, matplotlib\n"
        "os.environ.pop('MPLBACKEND', None)\n"
        + (f"matplotlib.use({chosen!r})\n" if chosen else "")
        + "before = matplotlib.rcParams._get_backend_or_none()\n"
        "import aebench.plots, aebench.report\n"
        "print(before, matplotlib.rcParams._get_backend_or_none())\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    before, after = res.stdout.split()
    assert after == before == (chosen or "None")


def test_the_runs_and_the_workbench_word_a_file_system_error_as_the_cli_does(tmp_path):
    from aebench.execution.lifecycle import save_error
    from aebench.ui.workbench import describe

    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "results.nc"))
    said = errors.describe_os_error(full)
    assert said.startswith(f"{tmp_path / 'results.nc'}: No space left on device; free some space")
    assert describe(full) == said  # the Workbench's status line
    assert errors.os_error_exit_code(full) == 1 and errors.is_save_failure(full)
    assert "(No space left on device)" in str(save_error("run-0000", tmp_path, full))  # a run's SaveError
    denied = OSError(errno.EACCES, "Permission denied", str(tmp_path / "spec.toml"))
    assert errors.os_error_exit_code(denied) == 2 and "choose a folder you can write" in describe(denied)
