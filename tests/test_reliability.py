"""Reliability and safety, one test per class of fault: process lifetime, the lock, plug-in
isolation at run time, other people's files, damaged results, resource faults, values that
are not numbers, divergence, downloads and permissions."""

from __future__ import annotations

import errno
import json
import multiprocessing as mp
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import TINY, make_distribution, pip_install_target, run_aebench, write_spec

import aebench
from aebench.data import download as dl
from aebench.errors import DataError
from aebench.execution.output import OutputLock

FOUR = TINY.replace("seeds = [0]", "seeds = [0, 1, 2, 3]")


def _status(out: Path, run_id: str) -> dict:
    return json.loads((out / "runs" / run_id / "status.json").read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# ------------------------------------------------------------------ process lifetime
def test_kill_9_of_the_parent_takes_the_process_workers_with_it(tmp_path):
    spec = write_spec(tmp_path, FOUR.replace("epochs = 2", "epochs = 150"))
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "aebench",
        "run",
        str(spec),
        "--out",
        str(out),
        "--executor",
        "process",
        "--workers",
        "2",
        "--quiet",
    ]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            workers = json.loads((out / ".lock").read_text()).get("workers", [])
        except (OSError, ValueError):
            workers = []
        running = [p for p in (out / "runs").glob("*/status.json") if '"running"' in p.read_text()]
        if workers and running:
            break
        time.sleep(0.2)
    assert workers and running, "the sweep never started its workers"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "orphaned workers kept running after kill -9 of their parent"
    snapshot = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}
    time.sleep(1.0)
    assert snapshot == {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}
    res = run_aebench(["run", spec, "--out", out, "--resume", "--quiet"])
    assert res.returncode == 0, res.stderr
    assert all(_status(out, f"run-{k:04d}")["status"] == "done" for k in range(4))


# ------------------------------------------------------------------------ the lock
def _contend(folder: str, start: float, results) -> None:
    while time.time() < start:
        pass
    try:
        with OutputLock(Path(folder)):
            results.put(("held", os.getpid()))
            time.sleep(1.0)
    except aebench.ResultsError:
        results.put(("refused", os.getpid()))


def test_processes_racing_for_the_lock_never_both_hold_it(tmp_path):
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    for _ in range(3):  # a few rounds: the window of a check-then-create lock is small
        start = time.time() + 3.0
        procs = [ctx.Process(target=_contend, args=(str(tmp_path / "out"), start, results)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        outcomes = [results.get(timeout=5)[0] for _ in procs]
        assert outcomes.count("held") == 1, outcomes
    with OutputLock(tmp_path / "out"):  # and it is free again once its holders are gone
        pass


# ------------------------------------------------------------- plug-ins at run time
class Hostile:
    """Callbacks that fail in every way a plug-in can."""

    @staticmethod
    @aebench.hookimpl
    def aebench_on_epoch_end(run, epoch, metrics):
        raise RuntimeError("logger lost its connection")

    @staticmethod
    @aebench.hookimpl
    def aebench_on_run_end(run, result):
        sys.exit(3)


@pytest.fixture
def hostile_plugin(in_process_plugin):
    in_process_plugin(Hostile)


def test_a_raising_callback_is_reported_and_the_sweep_of_four_finishes(tmp_path, hostile_plugin):
    with pytest.warns(UserWarning, match="Hostile"):
        ds = aebench.run(aebench.Spec.from_text(FOUR), out=tmp_path / "out", progress=False)
    assert [str(s) for s in ds["status"].values.ravel()] == ["done"] * 4
    errors = _status(tmp_path / "out", "run-0002")["hook_errors"]
    assert any("'Hostile'" in e and "aebench_on_epoch_end" in e and "logger lost" in e for e in errors)
    assert any("aebench_on_run_end" in e and "SystemExit" in e for e in errors)


class Unprintable(Exception):
    def __str__(self):
        raise ValueError("str of the exception itself raises")


class Pathological:
    """Callbacks whose failures are themselves hard to report (issue 22)."""

    @staticmethod
    @aebench.hookimpl
    def aebench_on_epoch_end(run, epoch, metrics):
        if epoch == 1:
            raise Unprintable()
        run.request_stop(3)  # not text: refused at the call, and the run goes on

    @staticmethod
    @aebench.hookimpl
    def aebench_on_run_start(run):
        run.stop_reason = object()  # assigned, not requested: dropped with a note


@pytest.fixture
def pathological_plugin(in_process_plugin):
    in_process_plugin(Pathological)


def test_hooks_whose_errors_cannot_be_printed_or_stop_with_junk_never_fail_a_run(tmp_path, pathological_plugin):
    spec = aebench.Spec.from_text(TINY.replace("seeds = [0]", "seeds = [0, 1]").replace("epochs = 2", "epochs = 3"))
    with pytest.warns(UserWarning, match="Pathological"):
        ds = aebench.run(spec, out=tmp_path / "out", progress=False)
    assert [str(s) for s in ds["status"].values.ravel()] == ["done", "done"]
    assert ds.sizes["epoch"] == 3  # the junk stop requests stopped nothing
    for run_id in ("run-0000", "run-0001"):
        status = _status(tmp_path / "out", run_id)
        errors = status["hook_errors"]
        assert "plug-in 'Pathological': aebench_on_epoch_end raised Unprintable (its message could not be printed)" in (
            errors
        )
        assert any("request_stop(reason): reason must be text, got int" in e for e in errors), errors
        assert any("set stop_reason to a object, not text: ignored" in e for e in errors), errors
        assert status["note"] == ""


def test_describing_an_exception_cannot_fail():
    from aebench.plugins import describe_exception

    class Weird(Exception):
        def __str__(self):
            return 42  # not text

    assert describe_exception(Unprintable()) == "Unprintable (its message could not be printed)"
    assert describe_exception(Weird()) == "Weird (its message could not be printed)"
    assert describe_exception(RuntimeError("x" * 5000)).endswith("…") and len(describe_exception(RuntimeError())) < 20


HOSTILE_PARAMS = """
from pydantic import BaseModel, Field
import aebench
from aebench.components import Corruption, CorruptionParams, Regularizer, RegularizerParams


def explode():
    raise RuntimeError("factory exploded")


class OutOfBounds(CorruptionParams):
    level: float = Field(5.0, ge=0, le=1)


class Factory(CorruptionParams):
    level: list = Field(default_factory=explode)


class Thing:
    pass


class NoSchema(CorruptionParams):
    model_config = {"arbitrary_types_allowed": True}
    thing: Thing = Field(default_factory=Thing)


class NotMyBase(BaseModel):
    weight: float = 0.1


def make(name, params, base=Corruption):
    return type(name.title().replace("-", ""), (base,), {"name": name, "summary": name, "Params": params})


@aebench.hookimpl
def aebench_corruptions():
    return [make("out-of-bounds", OutOfBounds), make("factory", Factory), make("no-schema", NoSchema)]


@aebench.hookimpl
def aebench_regularizers():
    return [make("not-my-base", NotMyBase, Regularizer)]
"""


def test_hostile_plugins_are_listed_as_broken_never_crash(tmp_path):
    target = tmp_path / "site"
    pip_install_target(
        make_distribution(tmp_path, "aebench-exits", "aebench_exits", "import sys\nsys.exit('no licence')\n"), target
    )
    pip_install_target(make_distribution(tmp_path, "aebench-hostile", "aebench_hostile", HOSTILE_PARAMS), target)
    res = run_aebench(["plugins", "--json"], pythonpath=target)
    assert res.returncode == 0, res.stderr
    broken = json.loads(res.stdout)["broken"]
    text = " | ".join(f"{b['plugin']}: {b['error']}" for b in broken)
    assert "aebench_exits: SystemExit: no licence" in text
    assert "defaults violate its own bounds" in text and "level" in text
    assert "factory exploded" in text
    assert "no JSON schema" in text
    assert "must subclass aebench.components.RegularizerParams" in text
    assert run_aebench(["plugins"], pythonpath=target).returncode == 0


# --------------------------------------------------------------- other people's files
def test_a_folder_of_foreign_files_is_refused_and_left_alone(tmp_path, tiny_spec, cli):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("years of work")
    code, _, err = cli("run", tiny_spec, "--out", out, "--quiet")
    assert code == 2 and "did not write" in err and "chapter1.tex" in err and "Traceback" not in err
    assert (
        sorted(p.name for p in out.iterdir()) == ["chapter1.tex"]
        and (out / "chapter1.tex").read_text() == "years of work"
    )
    assert cli("run", tiny_spec, "--out", out, "--quiet", "--force")[0] == 0
    assert (out / "chapter1.tex").read_text() == "years of work"


def test_symlinked_targets_are_refused_not_followed(tmp_path, tiny_spec, cli):
    out = tmp_path / "out"
    assert cli("run", tiny_spec, "--out", out, "--quiet")[0] == 0
    victim = tmp_path / "victim.html"
    victim.write_text("not yours")
    (out / "report.html").unlink(missing_ok=True)
    (out / "report.html").symlink_to(victim)
    code, _, err = cli("report", out)
    assert code == 2 and "symbolic link" in err and victim.read_text() == "not yours"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "runs").symlink_to(elsewhere)
    code, _, err = cli("run", tiny_spec, "--out", other, "--quiet", "--force")
    assert code == 2 and "symbolic link" in err and not any(elsewhere.iterdir())


def _plant(kind: str, at: Path, outside: Path) -> None:
    """Put something that is not aebench's own at ``at``: a link to ``outside``, a folder or a pipe."""
    if at.is_dir() and not at.is_symlink():
        import shutil

        shutil.rmtree(at)
    else:
        at.unlink(missing_ok=True)
    if kind == "symlink":
        at.symlink_to(outside)
    elif kind == "folder":
        at.mkdir()
    else:
        os.mkfifo(at)


@pytest.mark.parametrize(
    "where, kind, words",
    [
        ("runs/run-0000", "symlink", "runs/run-0000 is a symbolic link"),
        ("runs/run-0001/checkpoint.pt", "symlink", "runs/run-0001/checkpoint.pt is a symbolic link"),
        (
            "runs/run-0001/status.json",
            "fifo",
            "runs/run-0001/status.json is a named pipe where aebench keeps its own file",
        ),
        ("runs/run-0001", "fifo", "runs/run-0001 is a named pipe where aebench keeps its own folder"),
        ("runs/run-0001/metrics.nc", "folder", "runs/run-0001/metrics.nc is a folder where aebench keeps its own file"),
        (".lock", "symlink", ".lock is a symbolic link"),
        (".lock", "folder", ".lock is a folder where aebench keeps its own file"),
        ("results.nc", "fifo", "results.nc is a named pipe"),
    ],
)
def test_paths_below_the_top_of_out_are_refused_never_followed_on_resume(tmp_path, cli, where, kind, words):
    spec = write_spec(tmp_path, TINY.replace("seeds = [0]", "seeds = [0, 1]"))
    out = tmp_path / "out"
    assert cli("run", spec, "--out", out, "--quiet")[0] == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    _plant(kind, out / where, outside)
    code, _, err = cli("run", spec, "--out", out, "--quiet", "--resume")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert f"aebench: error: {out / words.split(' is ')[0]} is {words.split(' is ', 1)[1]}" in err, err
    assert not any(outside.iterdir())  # nothing written through the link


def test_a_report_files_link_is_refused_by_report(tmp_path, tiny_spec, cli):
    out = tmp_path / "out"
    assert cli("run", tiny_spec, "--out", out, "--quiet")[0] == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    _plant("symlink", out / "report_files", outside)
    code, _, err = cli("report", out)
    assert code == 2 and f"{out / 'report_files'} is a symbolic link" in err and "Traceback" not in err
    assert not any(outside.iterdir())


# ------------------------------------------------------------------- damaged results
def test_truncated_or_deleted_metrics_are_rerun_on_resume(tmp_path, cli):
    spec = write_spec(tmp_path, FOUR)
    out = tmp_path / "out"
    assert cli("run", spec, "--out", out, "--quiet")[0] == 0
    m1 = out / "runs" / "run-0001" / "metrics.nc"
    m1.write_bytes(m1.read_bytes()[:100])
    (out / "runs" / "run-0002" / "metrics.nc").unlink()
    ds = aebench.load_results(out)  # untouched yet: merged before the damage
    assert str(ds["status"].sel(seed=1).item()) == "done"
    code, _, err = cli("run", spec, "--out", out, "--quiet", "--resume")
    assert code == 0 and "run-0001" in err and "run-0002" in err and "running it again" in err
    ds = aebench.load_results(out)
    assert [str(s) for s in ds["status"].values.ravel()] == ["done"] * 4
    assert ds["recon_error_final"].notnull().all()


def test_a_deleted_metrics_file_is_never_merged_as_done(tmp_path):
    from aebench.results import merge_runs

    spec = aebench.Spec.from_text(FOUR)
    out = tmp_path / "out"
    aebench.run(spec, out=out, progress=False)
    (out / "runs" / "run-0003" / "metrics.nc").unlink()
    ds = merge_runs(out, spec.runs, spec.sweep_dims(), {"n_seeds": 4})
    assert str(ds["status"].sel(seed=3).item()) == "failed" and "metrics.nc is missing" in str(
        ds["reason"].sel(seed=3).item()
    )


# ------------------------------------------------------------------- resource faults
def test_a_full_disk_while_saving_is_one_message_keeps_results_and_resumes(tmp_path, monkeypatch, cli):
    from aebench import results

    spec = write_spec(tmp_path, FOUR)
    out = tmp_path / "out"
    real = results.write_netcdf
    calls = {"n": 0}

    def full_after_two(ds, path):
        if Path(path).name == "metrics.nc":
            calls["n"] += 1
            if calls["n"] > 2:
                raise RuntimeError("NetCDF: HDF error: No space left on device")
        return real(ds, path)

    monkeypatch.setattr(results, "write_netcdf", full_after_two)
    code, out_text, err = cli("run", spec, "--out", out, "--quiet")
    assert code == 1 and "cannot save run" in err and "--resume" in err and "Traceback" not in err
    assert err.count("\n") <= 2
    assert not list(out.rglob("*.tmp"))
    monkeypatch.setattr(results, "write_netcdf", real)
    assert cli("run", spec, "--out", out, "--quiet", "--resume")[0] == 0
    assert [str(s) for s in aebench.load_results(out)["status"].values.ravel()] == ["done"] * 4


def test_out_that_is_a_file_or_unwritable_is_a_clear_error(tmp_path, tiny_spec, cli):
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = cli("run", tiny_spec, "--out", f, "--quiet")
    assert code == 2 and "is a file" in err and f.read_text() == "x"
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        code, _, err = cli("run", tiny_spec, "--out", ro / "sub", "--quiet")
        assert code == 2 and "Traceback" not in err


def test_leftover_temporaries_are_cleaned_on_the_next_run(tmp_path, tiny_spec, cli):
    out = tmp_path / "out"
    assert cli("run", tiny_spec, "--out", out, "--quiet")[0] == 0
    (out / ".results.nc.abc123.tmp").write_bytes(b"half")
    (out / "runs" / "run-0000" / ".metrics.nc.x.tmp").write_bytes(b"half")
    assert cli("run", tiny_spec, "--out", out, "--quiet", "--resume")[0] == 0
    assert not list(out.rglob("*.tmp"))


def test_a_real_full_filesystem(tmp_path, tiny_spec, cli):
    mnt = tmp_path / "small"
    mnt.mkdir()
    assert cli("run", tiny_spec, "--out", tmp_path / "one", "--quiet")[0] == 0
    one_run = sum(p.stat().st_size for p in (tmp_path / "one").rglob("*") if p.is_file())
    size = 4 * one_run // 1024 + 4  # room for about four of the twelve runs
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}k", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({res.stderr.decode().strip() or res.returncode})")
    try:
        spec = write_spec(tmp_path, TINY.replace("seeds = [0]", "seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]"))
        code, _, err = cli("run", spec, "--out", mnt / "out", "--quiet")
        assert code in (1, 2) and "Traceback" not in err and ("No space" in err or "space" in err.lower()), err
        assert "inline_container" not in err and "enforce fail" not in err, err  # not torch's internals
        statuses = [json.loads(p.read_text())["status"] for p in (mnt / "out" / "runs").glob("*/status.json")]
        assert "done" in statuses or (mnt / "out" / "spec.toml").exists()
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# ----------------------------------------------------------- numbers that are not numbers
@pytest.mark.parametrize(
    "change, field",
    [
        ({"optimizer": {"name": "rmsprop", "lr": float("inf")}}, "optimizer.lr"),
        ({"regularizers": [{"name": "weight-l2", "weight": float("inf")}]}, "regularizers[0].weight"),
        ({"corruption": {"name": "gaussian", "level": float("nan")}}, "corruption.level"),
        ({"seeds": [2**64]}, "seeds"),
        ({"schedule": []}, "schedule"),
        ({"regularizers": [{"name": "weight-l2", "weight": 0.1, "layers": [7]}]}, "regularizers[0].layers"),
        ({"schedule": {"name": "joint", "epochs": True}}, "epochs = true"),
    ],
)
def test_values_that_are_not_numbers_are_spec_errors(tmp_path, cli, change, field):
    import tomli_w

    base = {
        "name": "x",
        "data": {"name": "digits", "subset": 100},
        "model": {"name": "stacked", "layers": [8, 4]},
        "schedule": {"name": "joint", "epochs": 1},
    }
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps({**base, **change}))
    code, _, err = cli("run", path, "--out", tmp_path / "out", "--quiet")
    assert code == 2 and field in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------ divergence
def test_a_blow_up_fails_that_run_only(tmp_path):
    spec = aebench.Spec.from_text(
        TINY.replace("epochs = 2", "epochs = 3") + '\n[sweep]\n"optimizer.lr" = [0.01, 1e12]\n'
    )
    ds = aebench.run(spec, out=tmp_path / "out", progress=False)
    good = ds.sel({"optimizer.lr": 0.01})
    bad = ds.sel({"optimizer.lr": 1e12})
    assert str(good["status"].item()) == "done"
    assert str(bad["status"].item()) == "failed" and "diverged" in str(bad["reason"].item())


# -------------------------------------------------------------------------- downloads
def _amat_zip(path: Path, train_rows: int, test_rows: int, value: str = "0.5") -> None:
    row = " ".join([value] * 784)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("rectangles_train.amat", "".join(f"{row} {k % 2}\n" for k in range(train_rows)))
        zf.writestr("rectangles_test.amat", "".join(f"{row} {k % 2}\n" for k in range(test_rows)))


def test_a_garbage_mirror_is_refused_and_nothing_is_kept(tmp_path, monkeypatch):
    from aebench.data import variations

    monkeypatch.setattr(dl, "LISA", [])
    monkeypatch.setitem(variations.SIZES, "rect", (8, 2, 6))
    garbage, short, wrong, good = (tmp_path / n for n in ("garbage", "short", "wrong", "good"))
    for d in (garbage, short, wrong, good):
        d.mkdir()
    (garbage / "rectangles.zip").write_bytes(os.urandom(4096))
    _amat_zip(short / "rectangles.zip", 10, 5)
    _amat_zip(wrong / "rectangles.zip", 10, 6, value="7")
    _amat_zip(good / "rectangles.zip", 10, 6)
    dest = tmp_path / "cache" / "rect"
    for bad in (garbage, short, wrong):
        with pytest.raises(DataError, match="from any mirror"):
            dl.download("rect", dest, [f"file://{bad}"])
        assert not dest.exists()  # no file, and no empty folder
    with pytest.warns(UserWarning, match="validated"):
        got = dl.download("rect", dest, [f"file://{garbage}", f"file://{good}"])
    assert "rectangles.zip" in got and (dest / "rectangles_train.amat").is_file()


def test_the_lab_server_is_tried_over_https_first():
    assert dl.sources("rect")[0][0].startswith("https://")


# ------------------------------------------------------------------------ permissions
def test_result_files_respect_the_umask(tmp_path, tiny_spec, cli):
    from aebench import atomic

    mask = os.umask(0o022)
    os.umask(mask)
    assert atomic.UMASK == mask
    out = tmp_path / "out"
    assert cli("run", tiny_spec, "--out", out, "--quiet")[0] == 0
    expected = 0o666 & ~atomic.UMASK
    for name in (
        "results.nc",
        "spec.toml",
        "runs/run-0000/metrics.nc",
        "runs/run-0000/status.json",
        "runs/run-0000/checkpoint.pt",
    ):
        assert stat.S_IMODE((out / name).stat().st_mode) == expected, name


def test_disk_errors_keep_their_errno_meaning():
    from aebench.execution.lifecycle import is_save_failure as _is_save_failure

    assert _is_save_failure(OSError(errno.ENOSPC, "No space left on device"))
    assert _is_save_failure(RuntimeError("NetCDF: HDF error: No space left on device"))
    assert not _is_save_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


# ------------------------------------------------------------ the data cache folder
RECT = TINY.replace(
    'data = { name = "digits", subset = 300, eval_subset = 100 }',
    'data = { name = "rect", subset = 100, eval_subset = 50 }',
)


@pytest.mark.parametrize("place", ["HOME=/proc", "AEBENCH_DATA is a file"])
def test_an_unusable_data_cache_folder_is_one_message_in_every_command(tmp_path, monkeypatch, cli, place):
    if place == "HOME=/proc":
        monkeypatch.delenv("AEBENCH_DATA", raising=False)
        monkeypatch.setenv("HOME", "/proc")
        folder, problem = "/proc/.cache/aebench", "cannot be created"
    else:
        (tmp_path / "afile").write_text("x")
        monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "afile"))
        folder, problem = str(tmp_path / "afile"), "is not a folder"
    spec = write_spec(tmp_path, RECT)
    for args in (
        ["data", "make", "rect", "--quiet"],
        ["data", "download", "rect"],
        ["run", spec, "--out", tmp_path / "out", "--quiet"],
    ):
        code, _, err = cli(*args)
        assert code == 2, (args, err)
        assert err.startswith(f"aebench: error: the data cache folder {folder} {problem}"), err
        assert "set AEBENCH_DATA to a folder aebench can write" in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ unsafe checkpoints
class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_an_unsafe_checkpoint_is_named_as_refused_for_safety(tmp_path, tiny_spec, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    aebench.run(tiny_spec, out=out, progress=False)
    run_dir = out / "runs" / "run-0000"
    torch.save({"model": {}, "x": _Payload()}, run_dir / "checkpoint.pt")
    with pytest.raises(
        aebench.ResultsError, match="checkpoint .* was refused for safety: it names the Python object posix.system"
    ) as info:
        aebench.load_model(run_dir)
    assert "missing" not in str(info.value) and "unreadable" not in str(info.value)
    status = _status(out, "run-0000")  # as if killed mid-run: --resume reads the checkpoint
    (run_dir / "status.json").write_text(json.dumps({**status, "status": "running"}))
    with pytest.warns(UserWarning, match="was refused for safety.*the run restarts from scratch"):
        ds = aebench.run(tiny_spec, out=out, progress=False, resume=True)
    assert str(ds["status"].item()) == "done" and not (tmp_path / "PWNED").exists()


# --------------------------------------------------------- signals from schedulers, Ctrl-C
LONG = TINY.replace("seeds = [0]", "seeds = [0, 1]").replace("epochs = 2", "epochs = 300")


def _popen(args: list, **kw) -> subprocess.Popen:
    def sigint_default() -> None:  # a suite started with `&` would pass SIGINT on ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(
        [sys.executable, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_default,
        **kw,
    )


def _wait_for(cond, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "sig, code, executor",
    [(signal.SIGTERM, 143, "local"), (signal.SIGHUP, 129, "local"), (signal.SIGTERM, 143, "process")],
)
def test_sigterm_and_sighup_stop_a_run_like_ctrl_c(tmp_path, sig, code, executor):
    spec = write_spec(tmp_path, LONG)
    out = tmp_path / "out"
    args = ["-m", "aebench", "run", spec, "--out", out, "--quiet", "--executor", executor]
    args += ["--workers", "2"] if executor == "process" else []  # local takes no --workers
    proc = _popen(args)
    _wait_for(lambda: (out / "runs" / "run-0000" / "checkpoint.pt").exists())
    proc.send_signal(sig)  # the parent only, as `timeout` does
    _, err = proc.communicate(timeout=120)
    name = signal.Signals(sig).name
    assert proc.returncode == code, err
    assert err == (
        f"aebench: stopped by {name}; the finished runs are kept. Continue with: aebench run SPEC --out DIR --resume\n"
    )
    status = _status(out, "run-0000")
    assert status["status"] == "interrupted" and status["reason"] == f"stopped by {name}; finish it with --resume"
    assert all(_status(out, p.name)["status"] != "running" for p in (out / "runs").iterdir() if p.is_dir())
    assert (out / "results.nc").is_file()  # merged on the way out
    with OutputLock(out):  # the lock, and any worker, went with it
        pass


def test_ctrl_c_while_process_workers_start_is_exit_130_without_tracebacks(tmp_path):
    spec = write_spec(tmp_path, LONG)
    out = tmp_path / "out"
    args = ["-m", "aebench", "run", spec, "--out", out, "--quiet", "--executor", "process", "--workers", "2"]
    proc = _popen(args, start_new_session=True)

    def workers() -> list:
        try:
            return json.loads((out / ".lock").read_text()).get("workers", [])
        except (OSError, ValueError):
            return []

    _wait_for(workers)  # spawned: they are importing torch now, for seconds
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.count("\n") == 1 and "--resume" in err, err
    assert not any(_alive(w) for w in workers())
    assert all(_status(out, p.name)["status"] != "running" for p in (out / "runs").glob("run-*"))


def test_ctrl_c_during_the_imports_is_exit_130_without_a_traceback(tmp_path, tiny_spec):
    proc = _popen(["-X", "importtime", "-m", "aebench", "validate", tiny_spec])
    seen = []
    for line in proc.stderr:  # -X importtime: one line per module as its import ends
        seen.append(line)
        if line.split("|")[-1].strip() == "pluggy":  # imported before torch, which takes seconds
            break
    assert seen and seen[-1].split("|")[-1].strip() == "pluggy", seen[-3:]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "aebench: interrupted" in err, err


# ------------------------------------------------------------- a worker that dies hard
DYING = """
import os
import signal

import aebench


@aebench.hookimpl
def aebench_on_epoch_end(run, epoch, metrics):
    how = os.environ.get("AEBENCH_TEST_DIE", "")
    if run.spec.seed == 1 and how == "exit":
        os._exit(3)
    if run.spec.seed == 1 and how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "raise":
        raise RuntimeError("logger lost its connection")
"""


@pytest.fixture(scope="module")
def dying_site(tmp_path_factory) -> Path:
    """A real plug-in distribution whose hook ends its worker process (as $AEBENCH_TEST_DIE says)."""
    root = tmp_path_factory.mktemp("dying")
    pip_install_target(make_distribution(root, "aebench-dying", "aebench_dying", DYING), root / "site")
    return root / "site"


@pytest.mark.parametrize(
    "how, reason",
    [
        ("exit", "worker process died: exit 3"),
        ("kill", "worker process died: killed by signal 9 (SIGKILL); if nobody sent it, the kernel's out-of-memory"),
    ],
)
def test_a_worker_that_dies_fails_only_its_runs_and_resume_finishes_them(tmp_path, dying_site, how, reason):
    target = dying_site
    spec = write_spec(tmp_path, FOUR)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-m", "aebench", "run", spec, "--out", out, "--quiet", "--executor", "process"]
    res = subprocess.run(
        [*args, "--workers", "2"], capture_output=True, text=True, env={**env, "AEBENCH_TEST_DIE": how}
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.splitlines() == [
        f"aebench: warning: {reason}" + res.stderr.split(reason, 1)[1].split("\n")[0],
        f"1 run(s) did not finish: see status.json in {out / 'runs'}",
    ], res.stderr
    assert "while training run-0001: marked failed; --resume runs them again." in res.stderr
    assert _status(out, "run-0001")["status"] == "failed" and _status(out, "run-0001")["reason"].startswith(reason)
    assert [_status(out, f"run-{k:04d}")["status"] for k in (0, 2, 3)] == ["done"] * 3  # the others went on
    assert str(aebench.load_results(out)["status"].sel(seed=1).item()) == "failed"
    if how == "kill":
        return  # resuming is the same either way
    res = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert [str(s) for s in aebench.load_results(out)["status"].values.ravel()] == ["done"] * 4


# --------------------------------------------------- file-system errors in every command
@pytest.fixture
def tmpfs(tmp_path):
    """A real tmpfs (root only; skipped elsewhere), unmounted afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip() or res.returncode})")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_report_on_a_read_only_file_system_is_one_message(tmpfs, tiny_spec, cli):
    out = tmpfs / "out"
    assert cli("run", tiny_spec, "--out", out, "--quiet")[0] == 0
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    code, _, err = cli("report", out)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"aebench: error: {out / 'report_files'}: Read-only file system; choose a folder"), err


def test_report_in_a_folder_it_cannot_write_is_one_message(tmp_path, tiny_spec, cli, monkeypatch):
    """The same without a mount (any user): the file system refuses every new file."""
    import tempfile

    out = tmp_path / "out"
    assert cli("run", tiny_spec, "--out", out, "--quiet")[0] == 0

    def refuse(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    code, _, err = cli("report", out)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert ": Read-only file system; choose a folder you can write" in err and str(out) in err, err


def test_a_disk_full_before_the_run_starts_is_one_message(tmp_path, tiny_spec, cli, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)  # the lock's write, the first byte a run writes
    out = tmp_path / "out"
    code, _, err = cli("run", tiny_spec, "--out", out, "--quiet")
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"aebench: error: cannot write the lock file {out / '.lock'} (No space left on device)")
    assert not (out / "runs").exists() and not (out / "spec.toml").exists()


def test_a_full_disk_while_writing_the_spec_is_one_message(tmp_path, tiny_spec, cli, monkeypatch):
    from aebench.execution import output

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(output, "write_text", full)
    code, _, err = cli("run", tiny_spec, "--out", tmp_path / "out", "--quiet")
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"aebench: error: {tmp_path / 'out' / 'spec.toml'}: No space left on device; free some")


def test_a_full_disk_under_torch_save_names_no_torch_internals(tmp_path, tiny_spec, cli, monkeypatch):
    from aebench.engine import checkpoint

    def full(path, state):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    monkeypatch.setattr(checkpoint, "save_checkpoint", full)  # the epoch checkpoints of the run's slot
    code, _, err = cli("run", tiny_spec, "--out", tmp_path / "out", "--quiet")
    assert code == 1 and "Traceback" not in err and "inline_container" not in err, err
    assert "a checkpoint could not be written: is the disk full?" in err and "--resume" in err, err


def test_hook_warnings_from_process_workers_are_one_line_each(tmp_path, dying_site):
    spec = write_spec(tmp_path, TINY.replace("seeds = [0]", "seeds = [0, 1]"))
    env = {**os.environ, "AEBENCH_TEST_DIE": "raise"}
    env["PYTHONPATH"] = os.pathsep.join([str(dying_site), os.environ.get("PYTHONPATH", "")])
    args = ["-m", "aebench", "run", spec, "--out", tmp_path / "out", "--quiet", "--executor", "process"]
    res = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert lines and all(
        line.startswith("aebench: warning: plug-in 'aebench_dying': aebench_on_epoch_end raised RuntimeError")
        for line in lines
    ), res.stderr


class LinkPlanter:
    """Puts a link where the ensemble's checkpoint is, while the sweep runs (after the start-up checks)."""

    out: Path
    victim: Path

    @staticmethod
    @aebench.hookimpl
    def aebench_on_epoch_end(run, epoch, metrics):
        if epoch == 2:  # the first checkpoint was written after epoch 1
            for p in (LinkPlanter.out / "runs").glob(".ensemble-*.pt"):
                p.unlink()
                p.symlink_to(LinkPlanter.victim)


def test_a_checkpoint_link_made_mid_run_is_refused_never_followed(tmp_path, in_process_plugin):
    from aebench.engine.checkpoint import load_checkpoint

    LinkPlanter.out, LinkPlanter.victim = tmp_path / "out", tmp_path / "victim.pt"
    LinkPlanter.victim.write_text("not yours")
    in_process_plugin(LinkPlanter)
    spec = TINY.replace("seeds = [0]", "seeds = [0, 1]").replace("epochs = 2", "epochs = 3")
    ds = aebench.run(aebench.Spec.from_text(spec + "ensemble = true\n"), out=LinkPlanter.out, progress=False)
    assert [str(s) for s in ds["status"].values.ravel()] == ["failed", "failed"]
    assert "is a symbolic link" in str(ds["reason"].sel(seed=0).item())
    assert LinkPlanter.victim.read_text() == "not yours"  # nothing written through the link
    (link,) = (LinkPlanter.out / "runs").glob(".ensemble-*.pt")
    with pytest.raises(aebench.errors.ResultsError, match="symbolic link"):  # nor read through one
        load_checkpoint(link)
