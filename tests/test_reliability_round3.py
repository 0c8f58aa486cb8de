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
from conftest import TINY, edit, make_distribution, pip_install_target, run_aebench, write_spec

import aebench
from aebench.errors import SaveError

TWO = edit(TINY, "seeds = [0]", "seeds = [0, 1]")


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


# ------------------------------------- 2. a --checkpoints store checked before --out is touched
@pytest.mark.parametrize(
    "url, words",
    [
        ("nosuch://bucket/x", "is not a usable store URL (Protocol not known: nosuch)"),
        ("s3://bucket/x", "its protocol needs a package that is not installed"),
        ("{tmp}/a-file", "cannot hold checkpoints"),
        ("file://{tmp}/a-file/below", "cannot hold checkpoints"),
    ],
)
def test_a_bad_checkpoint_store_is_one_line_before_anything_is_written(tmp_path, tiny_spec, cli, url, words):
    if url.startswith("s3://"):
        try:
            import s3fs  # noqa: F401

            pytest.skip("s3fs is installed here: s3:// resolves")
        except ImportError:
            pass
    (tmp_path / "a-file").write_text("not a folder")
    out = tmp_path / "out"
    code, _, err = cli("run", tiny_spec, "--out", out, "--quiet", "--checkpoints", url.format(tmp=tmp_path))
    assert code == 2 and words in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not out.exists()  # not even the folder: nothing was written
    assert (tmp_path / "a-file").read_text() == "not a folder"


def test_a_good_store_is_written_once_and_left_clean(tmp_path, tiny_spec, cli):
    store = tmp_path / "store"
    code, _, err = cli("run", tiny_spec, "--out", tmp_path / "out", "--quiet", "--checkpoints", f"file://{store}")
    assert code == 0, err
    assert store.is_dir() and not list(store.iterdir())  # the probe and the finished run's checkpoint are gone


# ------------------------- 3 and 4. a store that fails mid-run: no secret shown, no run left running
@pytest.fixture
def remountable(tmp_path):
    """A real tmpfs that the test can turn read-only and back (root only; skipped elsewhere)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip() or res.returncode})")

    def remount(mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(mnt)], check=True, capture_output=True)

    yield mnt, remount
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_store_gone_read_only_fails_its_runs_with_the_password_masked_and_resume_finishes(
    tmp_path, remountable, monkeypatch
):
    mnt, remount = remountable
    monkeypatch.chdir(mnt)  # fsspec reads file://user:pw@/ck as the relative path "user:pw@/ck"
    url = "file://alice:S3cr3tPW@/ck"
    spec = write_spec(tmp_path, TWO.replace("epochs = 2", "epochs = 4"))
    out = tmp_path / "out"
    seen = []

    def read_only_after_the_first_epoch(run_id: str, metrics: dict) -> None:
        seen.append(run_id)
        if len(seen) == 1:
            remount("ro")  # the next checkpoint save finds a read-only store

    with pytest.raises(SaveError) as info:
        aebench.run(spec, out, progress=False, checkpoints=url, on_epoch=read_only_after_the_first_epoch)
    message = str(info.value)
    assert "S3cr3tPW" not in message and "alice:***@" in message and "Read-only file system" in message, message
    status = _status(out, "run-0000")
    assert status["status"] == "failed" and "cannot save run run-0000" in status["reason"], status
    assert "S3cr3tPW" not in (out / "runs" / "run-0000" / "status.json").read_text()
    assert "running" not in _statuses(out)  # results.nc says so too (run-0001 never started: absent)
    with aebench.load_results(out) as ds:
        assert "S3cr3tPW" not in str(ds.attrs) and "S3cr3tPW" not in str(ds["reason"].values)
    from aebench.report import write_report

    html, _ = write_report(out)
    assert "running" not in html.read_text().split("Failed runs")[1].split("</ul>")[0]
    remount("rw")
    ds = aebench.run(spec, out, progress=False, checkpoints=url, resume=True)
    assert [str(s) for s in ds["status"].values.ravel()] == ["done", "done"]
    reference = aebench.run(spec, tmp_path / "reference", progress=False)
    import numpy as np

    for name in ("recon_error", "loss", "steps"):
        np.testing.assert_allclose(ds[name].values, reference[name].values, rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_disk_that_fills_under_out_leaves_no_run_running_to_a_reader(remountable, cli):
    """Where even the failed status cannot be written (the disk under --out is full), what reads the
    folder afterwards (``aebench ls``, ``aebench report``, ``load_results``) says interrupted and how
    to finish, never ``running``; with space again, --resume finishes the sweep."""
    from aebench.catalogue import launches

    mnt, _ = remountable
    spec = write_spec(mnt, TWO.replace("epochs = 2", "epochs = 4"))  # small: fits before the filler
    out, filler = mnt / "out", mnt / "filler"

    def fill_the_disk(run_id: str, metrics: dict) -> None:
        if not filler.exists():
            with open(filler, "wb") as f, pytest.raises(OSError):
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()

    with pytest.raises(SaveError, match="cannot save run run-0000.*is the disk full"):
        aebench.run(spec, out, progress=False, on_epoch=fill_the_disk)
    assert _status(out, "run-0000")["status"] == "running"  # it could not even say it failed
    (launch,) = [x for x in launches(mnt) if x.path == out]
    assert launch.interrupted == 1 and launch.running == 0
    code, _, err = cli("report", out)
    assert code == 2 and "cut short before any were merged" in err and "--resume" in err, err
    filler.unlink()
    code, _, err = cli("run", spec, "--out", out, "--resume", "--quiet")
    assert code == 0, err
    assert _statuses(out) == ["done", "done"]


def test_a_results_file_that_says_running_is_read_as_interrupted_once_nobody_holds_the_folder(tmp_path):
    """A results.nc merged while runs were going (the sweep merges every few seconds) and then cut
    (kill -9, a full disk) says ``running``: a reader of a folder no live process holds sees
    ``interrupted`` with the reason; while aebench holds the folder it stays ``running``."""
    from aebench.execution.output import OutputLock
    from aebench.results import ENDED_WHILE_RUNNING

    out = tmp_path / "out"
    ds = aebench.run(write_spec(tmp_path, TWO), out, progress=False)
    ds["status"] = ds["status"].where(ds["seed"] != 1, "running")
    ds.to_netcdf(out / "results.nc")
    with OutputLock(out):
        assert sorted(_statuses(out)) == ["done", "running"]
    read = aebench.load_results(out)
    assert str(read["status"].sel(seed=1).item()) == "interrupted"
    assert str(read["reason"].sel(seed=1).item()) == ENDED_WHILE_RUNNING
    assert str(read["status"].sel(seed=0).item()) == "done"


# --------------------------------------------- 9. a result variable with a name files cannot hold
def _odd_name_plugin(odd: str, attrs: dict | None = None):
    """An evaluator that names its result ``odd`` in the run of seed 0, and sensibly in the others."""
    import types

    import xarray as xr

    from aebench.components import Evaluator
    from aebench.components import Params as Base

    class Odd(Evaluator):
        name = "odd-names"
        Params = Base
        summary = "Returns a result variable whose name netCDF cannot hold, for seed 0."

        def evaluate(self, ctx):
            if ctx.spec.seed == 0:
                return {odd: xr.DataArray(1.0, attrs=attrs or {})}
            return {"fine_score": xr.DataArray(1.0)}

    mod = types.ModuleType(f"odd_names_{abs(hash(odd))}")
    mod.aebench_evaluators = aebench.hookimpl(lambda: [Odd])
    return mod


@pytest.mark.parametrize(
    "odd, attrs, words",
    [
        ("a/b", None, "evaluator 'odd-names' returned a result variable that cannot be saved: 'a/b'"),
        ("<img src=x>", None, "evaluator 'odd-names' returned a result variable that cannot be saved"),
        ("status", None, "evaluator 'odd-names' returned a result variable that cannot be saved: 'status'"),
        ("x" * 5000, None, "evaluator 'odd-names' returned a result variable that cannot be saved"),
        ("fine_name", {"meta": {"nested": 1}}, "its results could not be written as netCDF"),
    ],
)
def test_an_odd_result_name_fails_that_run_naming_the_evaluator_and_the_sweep_goes_on(
    tmp_path, cli, in_process_plugin, odd, attrs, words
):
    in_process_plugin(_odd_name_plugin(odd, attrs))
    spec = write_spec(tmp_path, TWO.replace("seeds = [0, 1]", "seeds = [0, 1]\nevaluate = { odd-names = {} }"))
    out = tmp_path / "out"
    code, _, err = cli("run", spec, "--out", out, "--quiet")
    assert code == 1 and "Traceback" not in err and "space" not in err, err
    failed = _status(out, "run-0000")
    assert failed["status"] == "failed", failed
    assert failed["reason"].startswith(words), failed
    assert len(failed["reason"]) < 400
    assert _status(out, "run-0001")["status"] == "done"  # the later run started, and finished
    assert _statuses(out) == ["failed", "done"]
    code, _, err = cli("run", spec, "--out", out, "--quiet", "--resume")  # the same answer, not a disk message
    assert code == 1 and "space" not in err and _status(out, "run-0000")["status"] == "failed", err


# ------------------------------ 7 and 8. plug-in figures and notes isolated; figure files never collide
def _greek_plugin():
    """Metrics whose names share one slug, a figure named like a table's figure, and broken figures and notes."""
    import types

    import matplotlib.pyplot as plt
    import xarray as xr

    from aebench.components import Evaluator
    from aebench.components import Params as Base
    from aebench.hookspecs import Figure, Metric, Note

    def line(ds):
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        return fig

    def boom(ds):
        raise RuntimeError("the plug-in's plotting failed")

    def bad_note(values):
        raise ValueError("the plug-in's note failed")

    class Greek(Evaluator):
        name = "greek"
        Params = Base
        summary = "Two metrics whose names differ only in a Greek letter."
        reports = (
            Metric("λ_err", title="lambda error"),
            Metric("μ_err", title="mu error"),
            Figure("table_λ_err", needs="λ_err", draw=line, title="named like the table's own figure"),
            Figure("returns_none", needs="λ_err", draw=lambda ds: None),
            Figure("raises", needs="λ_err", draw=boom),
            Figure("returns_text", needs="λ_err", draw=lambda ds: "not a figure"),
            Note(bad_note),
            Note(lambda values: "y" * 2_000_000),
        )

        def evaluate(self, ctx):
            return {"λ_err": xr.DataArray(1.0 + ctx.spec.seed), "μ_err": xr.DataArray(2.0 + ctx.spec.seed)}

    mod = types.ModuleType("greek_plugin")
    mod.aebench_evaluators = aebench.hookimpl(lambda: [Greek])
    return mod


def test_broken_plugin_figures_and_notes_are_named_and_the_rest_of_the_report_is_written(
    tmp_path, cli, in_process_plugin
):
    in_process_plugin(_greek_plugin())
    report = '\n[[report]]\ntitle = "T"\nmetric = "λ_err"\n[report.columns]\n"joint" = { "schedule.name" = "joint" }\n'
    spec = write_spec(tmp_path, TWO.replace("seeds = [0, 1]", "seeds = [0, 1]\nevaluate = { greek = {} }") + report)
    out = tmp_path / "out"
    assert cli("run", spec, "--out", out, "--quiet")[0] == 0
    code, text, err = cli("report", out)
    assert code == 0 and "Traceback" not in err, err
    md = (out / "report.md").read_text()
    assert (
        "*(figure returns_none could not be drawn: TypeError: its draw returned NoneType, not a matplotlib Figure)*"
        in md
    )
    assert "*(figure raises could not be drawn: RuntimeError: the plug-in's plotting failed)*" in md
    assert "*(figure returns_text could not be drawn: TypeError: its draw returned str, not a matplotlib Figure)*" in md
    assert "a note of evaluator 'greek' could not be written: ValueError: the plug-in's note failed" in md
    assert len(md) < 100_000  # a 2,000,000-character note is cut
    files = sorted(p.name for p in (out / "report_files").iterdir())
    # λ_err and μ_err share the slug table___err; the plug-in's "table_λ_err" shares its slug too: three files
    stems = {f.rsplit(".", 1)[0] for f in files}  # each figure kept as PNG and SVG
    assert len([f for f in stems if f.startswith("table___err-")]) == 3, files
    assert all(f"report_files/{f}" in md for f in files)
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(stems)
    assert "<h2>lambda error</h2>" in page and "<h2>mu error</h2>" in page and "<h2>Spec</h2>" in page


# ------------------------------------------------ declarations held to sane bounds when they load
HUGE_TITLE = """
import xarray as xr

import aebench
from aebench.components import Evaluator, Params
from aebench.hookspecs import Metric


class Huge(Evaluator):
    name = "huge-title"
    Params = Params
    summary = "A metric whose title is two million characters long."
    reports = ()

    def evaluate(self, ctx):
        return {"huge": xr.DataArray(1.0)}


# made behind the dataclass's back: the load still checks it
Huge.reports = (object.__new__(Metric),)
for key, value in dict(var="huge", title="T" * 2_000_000, units="", scale=1.0, higher_is_better=False,
                       interval=None, interval_factor=1.0, interval_words="", criterion=None, figure="bars",
                       summary=True, source=None, where={}, estimates=()).items():
    object.__setattr__(Huge.reports[0], key, value)


@aebench.hookimpl
def aebench_evaluators():
    return [Huge]
"""


def test_a_declaration_beyond_its_bounds_breaks_its_plugin_only(tmp_path):
    """A real distribution (entry point) declaring a 2,000,000-character title: listed as broken, the rest runs."""
    from aebench.hookspecs import Metric

    with pytest.raises(TypeError, match="Metric.title must be at most 500 characters, got 2,000,000"):
        Metric("huge", title="T" * 2_000_000)
    with pytest.raises(TypeError, match="Metric.var must be at most 100 characters"):
        Metric("v" * 101)
    site = tmp_path / "site"
    pip_install_target(make_distribution(tmp_path, "aebench-huge", "aebench_huge", HUGE_TITLE), site)
    res = run_aebench(["plugins"], pythonpath=site)
    assert res.returncode == 0, res.stderr
    assert "BROKEN plug-in" in res.stdout and "Metric.title must be at most 500 characters" in res.stdout
    assert len(res.stdout) + len(res.stderr) < 50_000
    spec = write_spec(tmp_path, TINY)
    res = run_aebench(["run", spec, "--out", tmp_path / "out", "--quiet"], pythonpath=site)
    assert res.returncode == 0 and len(res.stdout) + len(res.stderr) < 50_000, res.stderr[-2000:]


# --------------------------------------------------- 10. a results file that lacks what report reads
@pytest.mark.parametrize("drop", [["status"], ["reason"], ["status", "reason"], "all"])
def test_report_names_what_a_results_file_lacks(tmp_path, tiny_spec, cli, drop):
    import xarray as xr

    out = tmp_path / "out"
    assert cli("run", tiny_spec, "--out", out, "--quiet")[0] == 0
    ds = xr.load_dataset(out / "results.nc")
    drop = list(ds.data_vars) if drop == "all" else drop
    ds.drop_vars(drop).to_netcdf(out / "results.nc")
    code, _, err = cli("report", out)
    lacking = [v for v in ("status", "reason") if v in drop]
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert f"{out / 'results.nc'} lacks the variable{'s' if len(lacking) > 1 else ''} {', '.join(lacking)}" in err
    assert not (out / "report.html").exists()
    assert cli("run", tiny_spec, "--out", out, "--quiet", "--resume")[0] == 0  # the way out it names
    assert cli("report", out)[0] == 0


# ---------------------------------------------- 11. published numbers that are not a plain file
def _published(tmp_path: Path, where: str) -> Path:
    entry = f'\n[[report]]\ntitle = "T"\nmetric = "recon_error_final"\npublished = "{where}"\n'
    entry += '[report.columns]\n"joint" = { "schedule.name" = "joint" }\n'
    return write_spec(tmp_path, TINY + entry)


LOAD_IN_WORKBENCH = """
import sys
from aebench.errors import SpecError
from aebench.ui import Workbench
wb = Workbench()
try:
    wb.load_spec(sys.argv[1])
except SpecError as exc:
    print(exc)
    sys.exit(2)
"""


@pytest.mark.parametrize("kind", ["device", "fifo", "folder", "huge"])
def test_published_numbers_must_be_a_plain_file_of_bounded_size(tmp_path, kind):
    where = {"device": "/dev/zero", "fifo": str(tmp_path / "fifo"), "folder": str(tmp_path), "huge": "huge.csv"}[kind]
    if kind == "fifo":
        os.mkfifo(where)  # a real named pipe: a read would wait for a writer forever
    if kind == "huge":
        with open(tmp_path / "huge.csv", "w") as fh:
            fh.write("row,column,value,ci\n")
            fh.write("r,c,1.0,0.1\n" * 500_000)  # 6 MB
    spec = _published(tmp_path, where)
    words = {
        "device": "is a character device, not a plain file",
        "fifo": "is a named pipe, not a plain file",
        "folder": "is a folder, not a plain file",
        "huge": "is larger than 4 MiB",
    }[kind]
    commands = [["-m", "aebench", "validate", spec], ["-m", "aebench", "run", spec, "--out", tmp_path / "out"]]
    for args in commands if kind in ("device", "fifo") else commands[:1]:  # one reader: the others share it
        res = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and words in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.count("\n") == 1 and "report.published" in res.stderr, res.stderr
    assert not (tmp_path / "out").exists()
    if kind not in ("device", "fifo"):
        return
    res = subprocess.run(
        [sys.executable, "-c", LOAD_IN_WORKBENCH, str(spec)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 2 and words in res.stdout and "Traceback" not in res.stderr, res.stdout + res.stderr


# -------------------------------------------------------- 12. wb.set with values TOML cannot hold
def test_wb_set_takes_numpy_values_as_python_and_answers_the_rest_with_a_spec_error():
    import numpy as np

    from aebench.errors import SpecError
    from aebench.ui import Workbench

    wb = Workbench()
    wb.set({"model.layers": np.array([32, 16]), "optimizer.lr": np.float32(0.5)}, seeds=np.arange(2))
    assert wb.get("model.layers") == [32, 16] and type(wb.get("model.layers")[0]) is int
    assert wb.get("optimizer.lr") == pytest.approx(0.5) and type(wb.get("optimizer.lr")) is float
    assert wb.get("seeds") == [0, 1]
    wb.set({"sweep": {"optimizer.lr": np.array([0.01, 0.02])}})
    assert wb.spec_dict()["sweep"] == {"optimizer.lr": [0.01, 0.02]}
    wb.spec.to_toml()  # what the form holds is plain TOML
    before = wb.spec_dict()
    loop: list = [1]
    loop.append(loop)
    cases = [
        ({"model.layers": {32, 16}}, "model.layers: a set has no order; give a list"),
        ({"model.layers": loop}, "model.layers[1]: the value contains itself"),
        ({"sweep": {1: [0.1]}}, "sweep: the key 1 is int; keys of a table are text"),
        ({1: 2}, "wb.set: the key 1 is int"),
        ({"model.layers": [object()]}, "model.layers[0]: object"),
        ({"model.layers": np.array(["a", "b"])}, "model.layers"),
    ]
    for values, words in cases:
        with pytest.raises(SpecError, match=words.replace("[", r"\[").replace("]", r"\]")):
            wb.set(values)
        assert wb.spec_dict() == before  # refused before the form was touched
    with pytest.raises(SpecError, match="wb.set takes a dict"):
        wb.set([("model.layers", [1])])


# ------------------------------------------------- 13. SIGTERM at any moment of a dask start
def _children(pid: int) -> list[int]:
    """Child processes of ``pid``, whichever of its threads started them (dask's own thread spawns workers)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@pytest.mark.parametrize("moment", ["importing", "workers spawned", "workers starting"])
def test_sigterm_while_a_dask_cluster_starts_is_one_line_and_exit_143(tmp_path, tiny_spec, moment):
    out = tmp_path / "out"
    args = [sys.executable, "-m", "aebench", "run", tiny_spec, "--out", out, "--quiet", "--executor", "dask"]
    proc = subprocess.Popen([*map(str, args), "--workers", "2"], stderr=subprocess.PIPE, text=True)
    if moment == "importing":
        time.sleep(0.5)  # torch takes seconds to import
    else:
        _wait_for(lambda: len(_children(proc.pid)) > 0 or proc.poll() is not None)  # LocalCluster: its first process
        if moment == "workers starting":
            time.sleep(1.5)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("aebench: stopped by SIGTERM"), err
    assert not out.exists() or not list((out / "runs").glob("*/status.json"))
