"""Shared fixtures: tiny specs, the CLI in-process, real plug-in distributions."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

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
#: the tiny spec as a dictionary. Variants are made with :func:`tiny` / :func:`tiny_toml`
#: (by dotted key), never by replacing text: a replace whose anchor drifted would silently do
#: nothing and the test would check something else.
TINY_SPEC: dict[str, Any] = tomllib.loads(TINY)


def set_key(spec: dict[str, Any], key: str, value: Any) -> None:
    """``spec["a"]["b"][0]["c"] = value`` for ``key = "a.b.0.c"``. Every segment but the last
    must exist (list entries by index): a key that names nothing fails here, loudly, naming it.
    The last may be new (a field the table did not set), and the spec's validation refuses a
    misspelt one."""
    node: Any = spec
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node and isinstance(node[part], dict | list):
            node = node[part]
        else:
            raise KeyError(f"{key!r}: the spec has no table {'.'.join(parts[: depth + 1])!r}")
    last = parts[-1]
    if isinstance(node, list):
        if not (last.isdigit() and int(last) < len(node)):
            raise KeyError(f"{key!r}: {'.'.join(parts[:-1])!r} has no entry {last}")
        node[int(last)] = value
    else:
        node[last] = value


def tiny(changes: dict[str, Any] | None = None, /, **top: Any) -> dict[str, Any]:
    """A copy of the tiny spec with whole top-level keys replaced or added (``seeds=[0, 1]``,
    ``schedule=[...]``, ``sweep={...}``, ``ensemble=True``; the spec model refuses unknown ones),
    then values set by dotted key (``{"schedule.epochs": 3}``, see :func:`set_key`)."""
    spec = copy.deepcopy(TINY_SPEC)
    spec.update(copy.deepcopy(top))
    for key, value in (changes or {}).items():
        set_key(spec, key, copy.deepcopy(value))
    return spec


def to_toml(spec: dict[str, Any]) -> str:
    """A spec as TOML with one line per top-level key (tables inline, like :data:`TINY`), so
    that a test may still prefix top-level keys or append a ``[sweep]`` table to it."""

    def inline(value: Any) -> str:
        if isinstance(value, dict):
            items = ", ".join(f"{key(k)} = {inline(v)}" for k, v in value.items())
            return f"{{ {items} }}" if items else "{}"
        if isinstance(value, list):
            return "[" + ", ".join(inline(v) for v in value) + "]"
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, str):
            return json.dumps(value)
        return repr(value)

    def key(k: str) -> str:
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

    return "".join(f"{key(k)} = {inline(v)}\n" for k, v in spec.items())


def tiny_toml(changes: dict[str, Any] | None = None, /, **top: Any) -> str:
    """:func:`tiny` as TOML text (for spec files and ``Spec.from_text``)."""
    return to_toml(tiny(changes, **top))


def edit(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced by ``new``, where ``old`` must occur exactly once: for the
    few tests that spoil a spec's text on purpose (broken TOML, a misspelt key)."""
    found = text.count(old)
    assert found == 1, f"{old!r} occurs {found} times in the spec text, not once"
    return text.replace(old, new)


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
    args: list[str], pythonpath: Path | None = None, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``aebench ARGS`` in a subprocess whose import path includes ``pythonpath`` (``env``: more variables)."""
    env = {**os.environ, **(env or {})}
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
