"""Sweeps at scale: executors agree, kill -9 and resume, truncated checkpoints, locks, disk full, Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
from conftest import TINY, write_spec

import aebench
from aebench.execution.output import OutputLock

SIXTEEN = (
    TINY.replace("seeds = [0]", "seeds = [0, 1]")
    + """
[sweep]
"schedule.name" = ["joint", "layerwise"]
"corruption.level" = [0.1, 0.3]
"optimizer.lr" = [0.01, 0.02]
"""
)
TIMING = ["epoch_seconds", "train_seconds"]


def numbers(ds: xr.Dataset) -> xr.Dataset:
    return ds.drop_vars([v for v in TIMING if v in ds]).drop_attrs(deep=False)


@pytest.fixture(scope="module")
def local_16(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    spec = write_spec(out.parent, SIXTEEN)
    return spec, aebench.run(spec, out=out, progress=False)


def test_sixteen_runs_have_one_dim_per_axis(local_16):
    _, ds = local_16
    assert ds["recon_error"].dims == ("schedule.name", "corruption.level", "optimizer.lr", "seed", "epoch", "split")
    assert ds["status"].size == 16 and set(ds["status"].values.ravel()) == {"done"}


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_executors_give_the_same_numbers(local_16, tmp_path, executor):
    spec, local = local_16
    ds = aebench.run(spec, out=tmp_path / executor, executor={"name": executor, "workers": 2}, progress=False)
    # Workers run torch with fewer threads: equal up to floating-point summation order.
    xr.testing.assert_allclose(numbers(ds), numbers(local), rtol=1e-5, atol=1e-6)


def _sigint_default() -> None:
    # A suite started in the background (`cmd &`) inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: give the child the terminal's default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _aebench(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "aebench", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_default,
        **kw,
    )


SLOW = """\
name = "slow"
seeds = [0, 1]
data = { name = "mnist", subset = 2000, eval_subset = 500 }
model = { name = "stacked", layers = [256, 128] }
corruption = { name = "gaussian", level = 0.3 }
schedule = { name = "joint", epochs = 6 }
optimizer = { name = "rmsprop", lr = 0.002 }
[sweep]
"schedule.name" = ["joint", "pretrain-joint"]
"""


def _status(out: Path, run: str) -> str:
    try:
        return json.loads((out / "runs" / run / "status.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return ""


def _wait(cond, timeout=240):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_kill_9_mid_sweep_then_resume_equals_an_uninterrupted_run(tmp_path):
    spec = write_spec(tmp_path, SLOW)
    reference = aebench.run(spec, out=tmp_path / "ref", progress=False)
    out = tmp_path / "out"
    proc = _aebench("run", spec, "--out", out, "--quiet")
    # Kill it while run-0001 is part-way (it has a checkpoint) and run-0000 is finished.
    _wait(lambda: _status(out, "run-0000") == "done" and (out / "runs" / "run-0001" / "checkpoint.pt").exists())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _status(out, "run-0001") == "running"
    done_before = (out / "runs" / "run-0000" / "metrics.nc").read_bytes()
    res = subprocess.run(
        [sys.executable, "-m", "aebench", "run", spec, "--out", out, "--resume", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert (out / "runs" / "run-0000" / "metrics.nc").read_bytes() == done_before  # not re-run
    resumed = aebench.load_results(out)
    assert xr.open_dataset(out / "runs" / "run-0001" / "metrics.nc").attrs["resumed"] == 1
    assert_same_runs(resumed, reference)


def assert_same_runs(a: xr.Dataset, b: xr.Dataset) -> None:
    """Same epochs, steps, stages and statuses exactly; metrics to float32 round-off.

    Two processes can differ in the last bit of a float32 reduction (memory alignment
    picks the vector path) even for a run that was never interrupted.
    """
    for name in ("steps", "stage", "status"):
        xr.testing.assert_equal(a[name], b[name])
    xr.testing.assert_allclose(numbers(a), numbers(b), rtol=1e-6, atol=0)


def test_truncated_checkpoint_restarts_that_run_with_a_warning(tmp_path, tiny_spec):
    out = tmp_path / "out"
    reference = aebench.run(tiny_spec, out=tmp_path / "ref", progress=False)
    aebench.run(tiny_spec, out=out, progress=False)
    store = out / "runs" / "run-0000"
    status = json.loads(store.joinpath("status.json").read_text())
    store.joinpath("status.json").write_text(json.dumps({**status, "status": "running"}))  # as if killed
    data = store.joinpath("checkpoint.pt").read_bytes()
    store.joinpath("checkpoint.pt").write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="checkpoint .* is unreadable.*restarts from scratch"):
        ds = aebench.run(tiny_spec, out=out, progress=False, resume=True)
    xr.testing.assert_equal(numbers(ds), numbers(reference))


def test_a_second_process_on_one_folder_is_refused(tmp_path):
    spec = write_spec(tmp_path, SLOW)
    out = tmp_path / "out"
    first = _aebench("run", spec, "--out", out, "--quiet")
    try:
        _wait(lambda: (out / "runs").exists())
        second = subprocess.run(
            [sys.executable, "-m", "aebench", "run", spec, "--out", out, "--resume"], capture_output=True, text=True
        )
        assert second.returncode == 2
        assert "in use by another aebench run" in second.stderr and str(first.pid) in second.stderr
    finally:
        first.kill()
        first.wait()


def test_disk_full_on_results_write_keeps_the_previous_file(tmp_path, tiny_spec, monkeypatch, cli):
    out = tmp_path / "out"
    aebench.run(tiny_spec, out=out, progress=False)
    before = (out / "results.nc").read_bytes()

    def full(self, path, *a, **k):
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    code, _, err = cli("run", tiny_spec, "--out", out, "--resume", "--quiet")
    assert code == 1 and "No space left on device" in err and "intact" in err  # a save failure, not bad input
    assert (out / "results.nc").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path):
    spec = write_spec(tmp_path, SLOW)
    out = tmp_path / "out"
    proc = _aebench("run", spec, "--out", out, "--quiet")
    _wait(lambda: (out / "runs" / "run-0000" / "checkpoint.pt").exists())
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "--resume" in err and "Traceback" not in err
    assert _status(out, "run-0000") == "interrupted"
    with OutputLock(out):  # the lock died with the interrupted run
        pass
    assert aebench.load_results(out)["status"].size == 4  # merged on the way out, though nothing finished
    res = subprocess.run(
        [sys.executable, "-m", "aebench", "run", spec, "--out", out, "--resume", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert set(aebench.load_results(out)["status"].values.ravel()) == {"done"}


def test_zip_sweep_merges_along_one_point_dimension(tmp_path):
    spec = write_spec(
        tmp_path, TINY + '[sweep]\nmode = "zip"\n"optimizer.lr" = [0.01, 0.02]\n"corruption.level" = [0.1, 0.2]\n'
    )
    ds = aebench.run(spec, out=tmp_path / "out", progress=False)
    assert ds["recon_error"].dims[:2] == ("point", "seed")
    assert list(ds["optimizer.lr"].values) == [0.01, 0.02] and list(ds["corruption.level"].values) == [0.1, 0.2]
