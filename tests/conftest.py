"""Shared fixtures: tiny specs, the CLI in-process, real plug-in distributions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib
import pytest

import aebench

# The tests draw figures into files: Agg (aebench.plots leaves the backend to its caller).
matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"

TINY = """\
name = "tiny"
seeds = [0]
data = { name = "digits", subset = 300, eval_subset = 100 }
model = { name = "stacked", layers = [32, 16] }
corruption = { name = "gaussian", level = 0.2 }
schedule = { name = "joint", epochs = 2 }
optimizer = { name = "rmsprop", lr = 0.01, batch_size = 50 }
"""


#: thread-count variables that dask's nanny writes into os.environ (``distributed.nanny.pre-spawn-environ``)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@pytest.fixture(autouse=True)
def _keep_thread_settings():
    """A test that starts dask workers must not leave OMP_NUM_THREADS=1 behind: every process
    started later (the tutorials' kernels under nbval) would run single-threaded."""
    before = {k: os.environ.get(k) for k in THREAD_VARS}
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def write_spec(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def cli(capsys):
    """Run ``aebench ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from aebench.cli import main

    def call(*args: str):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def pip_install_target(project: Path, target: Path) -> None:
    """Install a plug-in distribution for real (wheel build, dist-info, entry points) into ``target``."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(project),
        ],
        check=True,
        capture_output=True,
    )


def make_distribution(root: Path, dist: str, module: str, source: str) -> Path:
    """Write a minimal plug-in distribution with an ``aebench`` entry point."""
    proj = root / dist
    (proj / module).mkdir(parents=True)
    (proj / module / "__init__.py").write_text(textwrap.dedent(source))
    (proj / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "{dist}"
            version = "0.0.1"
            [project.entry-points.aebench]
            {module} = "{module}"
            [tool.setuptools]
            packages = ["{module}"]
            """
        )
    )
    return proj


def run_aebench(
    args: list[str], pythonpath: Path | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """``aebench ARGS`` in a subprocess whose import path includes ``pythonpath``."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "aebench", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture
def in_process_plugin():
    """Register in-process plug-ins for one test (call it with each); the registry is rebuilt without them after."""
    from aebench import plugins

    added = []

    def register(plugin):
        added.append(plugin)
        return aebench.register_plugin(plugin)

    yield register
    for plugin in added:
        if plugin in plugins._EXTRA:
            plugins._EXTRA.remove(plugin)
    plugins.registry(refresh=True)
