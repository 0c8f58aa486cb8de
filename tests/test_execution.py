"""Executors' pieces without a cluster: checkpoint stores, GPUs per worker (faked), the cluster pre-flight."""

from __future__ import annotations

import functools
import os
import threading
import uuid

import numpy as np
import pytest
import torch
from conftest import TINY, write_spec

import aebench
from aebench.engine.runner import RunInterrupted
from aebench.execution import executors
from aebench.execution.preflight import check_workers

LONG = TINY.replace("epochs = 2", "epochs = 6")


# ------------------------------------------------------------------ checkpoint stores
@pytest.mark.parametrize("store", ["memory", "path"])
def test_checkpoints_in_a_store_resume_an_interrupted_run(tmp_path, store):
    import fsspec

    spec = write_spec(tmp_path, LONG)
    url = f"memory://aebench-{uuid.uuid4().hex[:8]}" if store == "memory" else str(tmp_path / "store")
    fs, root = fsspec.core.url_to_fs(url)
    stop = threading.Event()
    seen: list[list[str]] = []

    def after(run_id: str, metrics: dict) -> None:
        if metrics["epoch"] == 3:
            stop.set()  # interrupted in epoch 4: the store holds epoch 3
            seen.append(fs.ls(root, detail=False))

    out = tmp_path / "out"
    with pytest.raises(RunInterrupted):
        aebench.run(spec, out, progress=False, stop=stop, on_epoch=after, checkpoints=url)
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].endswith(".pt")  # one checkpoint, in the store
    assert not (out / "runs" / "run-0000" / "checkpoint.pt").exists()  # not in --out
    ds = aebench.run(spec, out, progress=False, resume=True, checkpoints=url)
    ref = aebench.run(spec, tmp_path / "ref", progress=False)
    np.testing.assert_allclose(ds["recon_error"].values, ref["recon_error"].values, rtol=1e-5)
    with aebench.load_results(out) as merged:
        assert str(merged["status"].item()) == "done"
    import xarray as xr

    with xr.open_dataset(out / "runs" / "run-0000" / "metrics.nc") as m:
        assert m.attrs["resumed"] == 1
    assert fs.ls(root, detail=False) == []  # removed once the run is done (its final weights are in --out)


# ------------------------------------------------------------------ GPUs (faked)
@pytest.fixture
def four_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)


def test_cuda_means_one_device_per_worker(four_gpus):
    assert executors.plan_devices("cuda") == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert executors.plan_devices("auto") == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert executors.plan_devices("cuda:2") is None and executors.plan_devices("cpu") is None
    assert executors.plan_workers(None, "cuda") == (4, ["cuda:0", "cuda:1", "cuda:2", "cuda:3"])
    assert executors.plan_workers(2, "cpu") == (2, None)


def test_no_gpu_no_pinning(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert executors.plan_devices("cuda") is None and executors.plan_devices("auto") is None


def test_cuda_k_is_accepted_and_checked(four_gpus):
    from aebench import options
    from aebench.engine.runner import resolve_device

    assert options.device("cuda:3") == "cuda:3" and resolve_device("cuda:3") == torch.device("cuda:3")
    with pytest.raises(aebench.AebenchError, match=r"cuda:7 .* sees 4 CUDA device\(s\)"):
        resolve_device("cuda:7")
    with pytest.raises(ValueError):
        options.device("cuda:x")


def test_each_process_worker_is_pinned_to_its_own_gpu(tmp_path):
    """The real pool (spawned processes) with the pinning a 2-GPU node gets; each worker reports."""
    from aebench.execution.lifecycle import whoami
    from aebench.execution.procpool import map_tasks

    got: list[dict] = []
    map_tasks(
        list(range(6)),
        {},
        lambda task, result: got.append(result),
        fn=whoami,
        workers=2,
        initializer=executors.init_worker,
        initargs=functools.partial(executors._worker_args, 1, os.getpid(), ["cuda:0", "cuda:1"]),
        on_worker=lambda task, pid: None,
        on_death=lambda task, reason: None,
    )
    by_pid = {g["pid"]: g["device"] for g in got}
    assert len(got) == 6 and set(by_pid.values()) <= {"cuda:0", "cuda:1"}
    assert len(set(by_pid.values())) == len(by_pid)  # no two workers share a GPU


# ------------------------------------------------------------------ cluster pre-flight
class _Data:
    name, checksums = "digits", {"x": "1"}


def _facts(**change) -> dict:
    return {"version": aebench.__version__, "missing": [], "checksums": {"digits{}": {"x": "1"}}, **change}


def test_every_worker_must_match_the_client():
    data = {"digits{}": _Data()}
    check_workers({"tcp://a:1": _facts(), "tcp://b:2": _facts()}, data)
    with pytest.raises(aebench.AebenchError, match=r"worker tcp://b:2 runs aebench 0\.0\.1, this client"):
        check_workers({"tcp://a:1": _facts(), "tcp://b:2": _facts(version="0.0.1")}, data)
    with pytest.raises(aebench.AebenchError, match=r"worker tcp://b:2 lacks the plug-in the spec names: model 'rbm'"):
        check_workers({"tcp://b:2": _facts(missing=["model 'rbm'"])}, data)
    with pytest.raises(aebench.AebenchError, match=r"data set 'digits' on worker tcp://a:1 differs"):
        check_workers({"tcp://a:1": _facts(checksums={"digits{}": {"x": "2"}})}, data)
    with pytest.raises(aebench.AebenchError, match="no workers"):
        check_workers({}, data)
    sent = []
    lacking = _facts(checksums={"digits{}": "cannot be loaded here (DataError: no cache)"})
    with pytest.warns(
        UserWarning, match="'digits' cannot be loaded here .* on worker tcp://a:1: sent from this machine"
    ):
        check_workers({"tcp://a:1": lacking}, data, lambda addr, key, d: sent.append((addr, key, d)))
    assert sent == [("tcp://a:1", "digits{}", data["digits{}"])]


NOTEBOOK_PLUGIN = """
corruption = { name = "only-here", level = 0.1 }
"""


def test_dask_gpus_one_per_worker_and_a_plugin_only_the_client_has_is_named(tmp_path, cli, monkeypatch):
    """A LocalCluster on a (faked) 2-GPU node: one worker per GPU, each pinned to its own and
    holding a ``GPU`` resource; a plug-in registered in this process only (a notebook's) is
    missing on the workers: exit 2 naming the worker and the plug-in, before anything trains."""
    pytest.importorskip("dask.distributed")
    from aebench import plugins
    from aebench.builtin.corruptions import Gaussian
    from aebench.execution.lifecycle import whoami

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    seen: dict = {}
    check = executors.DaskExecutor.check

    def spy(self, client):
        seen["devices"] = sorted(f["device"] for f in client.run(whoami).values())
        seen["gpu_resource"] = executors._workers_have(client, "GPU")
        check(self, client)

    monkeypatch.setattr(executors.DaskExecutor, "check", spy)

    class OnlyHere(Gaussian):
        name = "only-here"

    class Plugin:
        @aebench.hookimpl
        def aebench_corruptions(self):
            return [OnlyHere]

    plugin = Plugin()
    aebench.register_plugin(plugin)
    try:
        spec = write_spec(tmp_path, TINY.replace('corruption = { name = "gaussian", level = 0.2 }', NOTEBOOK_PLUGIN))
        code, _, err = cli("run", spec, "--out", tmp_path / "out", "--executor", "dask", "--device", "cuda", "--quiet")
    finally:
        plugins._EXTRA.remove(plugin)
        plugins.registry(refresh=True)
    assert seen == {"devices": ["cuda:0", "cuda:1"], "gpu_resource": True}
    assert code == 2 and "Traceback" not in err, err
    assert "lacks the plug-in the spec names: corruption 'only-here'" in err and "worker tcp://127.0.0.1:" in err, err
    assert not (tmp_path / "out" / "runs").exists()
