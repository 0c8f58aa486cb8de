"""Presets by name: shipped inside the package (a wheel, not only a clone), listed with their measured
runtime, and loaded by name by ``Spec.from_toml``, ``aebench run``/``validate`` and the Workbench."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

import aebench
from aebench import presets


def test_every_preset_and_its_published_tables_live_in_the_package():
    assert presets.FOLDER == Path(aebench.__file__).parent / "presets"
    assert {"zhou2015-dae-reduced", "zhou2015-ae-l2-reduced", "erhan2010-seeds"} <= set(presets.names())
    for name in presets.names():
        spec = aebench.Spec.from_toml(name)  # by name: its [[report]] tables read published/ beside it
        assert Path(spec.source) == presets.FOLDER / f"{name}.toml"
        for entry in spec.raw.get("report", []):
            if "published" in entry:  # read from the CSV beside the preset, by name as by path
                assert isinstance(entry["published"], list) and entry["published"], (name, entry.get("title"))
            else:  # a table with nothing published beside it says so in its note (Erhan et al. show histograms)
                assert "no published numbers" in entry["note"], (name, entry.get("title"))
    # the clone's old path still reaches the same files
    assert (ROOT / "experiments" / "zhou2015-dae-reduced.toml").resolve() == presets.path("zhou2015-dae-reduced")


def test_a_path_that_exists_comes_before_a_preset_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("zhou2015-dae-reduced").write_text(
        'name = "mine"\ndata = { name = "digits" }\n'
        'model = { name = "stacked", layers = [8] }\nschedule = { name = "joint" }\n'
    )
    assert aebench.Spec.from_toml("zhou2015-dae-reduced").name == "mine"
    assert aebench.Spec.from_toml("zhou2015-ae-l2-reduced.toml").source == str(presets.path("zhou2015-ae-l2-reduced"))


def test_a_mistyped_preset_name_gets_its_close_match(cli):
    code, _, err = cli("validate", "zhou2015-dae-reducd")
    assert code == 2 and "did you mean the preset 'zhou2015-dae-reduced'" in err
    code, _, err = cli("validate", "nothing-like-it")
    assert code == 2 and "aebench presets" in err


def test_presets_command_lists_names_runs_and_measured_runtime(cli):
    code, out, _ = cli("presets")
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("zhou2015-dae-reduced "))
    assert line.split()[1] == "72" and "7 min 8 s" in line  # README: 428 s as shipped, 72 runs
    assert "not measured" in next(x for x in out.splitlines() if x.startswith("zhou2015-dae "))
    import json

    code, out, _ = cli("presets", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["erhan2010-seeds-reduced"]["seconds"] == 31 and rows["erhan2010-seeds"]["seconds"] is None


def test_validate_and_workbench_take_a_preset_name(cli):
    code, out, _ = cli("validate", "zhou2015-ae-l2-reduced")
    assert code == 0 and "18 runs" in out
    pytest.importorskip("ipywidgets")
    from aebench.ui import Workbench

    wb = Workbench("zhou2015-ae-l2-reduced")
    assert wb.spec.name == aebench.Spec.from_toml("zhou2015-ae-l2-reduced").name


def test_report_on_a_spec_says_to_run_it_first(cli, tiny_spec):
    code, _, err = cli("report", tiny_spec)
    assert code == 2 and "is a spec, not a results folder: run it first" in err and "Not a directory" not in err
    code, _, err = cli("report", "zhou2015-dae-reduced")
    assert code == 2 and "run it first" in err


def test_a_built_wheel_installs_the_presets(tmp_path):
    """A real non-editable install: build the wheel from a copy of the sources, pip-install it into a
    folder, and use it from elsewhere (not the clone): the presets and their CSVs are there, by name."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "aebench", src / "aebench", ignore=shutil.ignore_patterns("__pycache__"))
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, src], check=True)
    wheel = next(wheels.glob("aebench-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", target, wheel], check=True)
    installed = target / "aebench" / "presets"
    assert sorted(p.name for p in installed.glob("*.toml")) == sorted(f"{n}.toml" for n in presets.names())
    assert sorted(p.name for p in (installed / "published").glob("*.csv")) == sorted(
        p.name for p in (presets.FOLDER / "published").glob("*.csv")
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    code = (
        "import aebench; from pathlib import Path; "
        f"assert Path(aebench.__file__).is_relative_to({str(target)!r}), aebench.__file__; "
        "s = aebench.Spec.from_toml('zhou2015-dae-reduced'); print(s.source, len(s.runs))"
    )
    got = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == [str(installed / "zhou2015-dae-reduced.toml"), "72"]
    got = subprocess.run(
        [sys.executable, "-m", "aebench", "presets"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert got.returncode == 0 and "zhou2015-ae-l2-reduced" in got.stdout, got.stderr
