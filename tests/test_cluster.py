"""A real dask cluster: `dask scheduler` and `dask worker` processes (the CLIs, on 127.0.0.1).

Three ways a cluster is found in practice, each ending with every run done and the results
of a local run: a shared disk; no shared disk (each worker in its own mount namespace, where
the client's folder is an empty tmpfs, as on nodes with local scratch); a worker killed in the
middle of a run (its task goes to the other worker and continues from its checkpoint).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_toml, write_spec

import aebench

pytest.importorskip("dask.distributed")

TWO = tiny_toml(seeds=[0, 1])
#: long enough to be killed in the middle of (hundreds of epochs), short enough for CI
LONGER = tiny_toml({"schedule.epochs": 120}, seeds=[0, 1])
COMPARED = ("recon_error", "recon_error_final", "loss", "steps")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def isolation() -> list[str] | None:
    """A command prefix giving a process its own mount namespace: ``unshare -m`` (root) or
    ``unshare -rm`` (an unprivileged user namespace); None where the platform allows neither."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "-m", "--propagation", "private"], ["unshare", "-rm"]):
        probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs tmpfs /mnt 2>/dev/null || exit 1"])
        if probe.returncode == 0:
            return prefix
    return None


@contextlib.contextmanager
def dask_cluster(
    tmp_path: Path,
    workers: int = 2,
    hide: Path | None = None,
    isolate: list[str] | None = None,
    env=None,
    nanny: bool = False,
):
    """A scheduler and ``workers`` worker processes (no nanny: a killed worker stays dead; with
    ``nanny``, each worker's nanny starts it again). ``hide``: each worker sees an empty tmpfs
    there and works in a folder of its own; ``env``: more environment for the workers."""
    from dask.distributed import Client

    addr = f"tcp://127.0.0.1:{_free_port()}"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(args: list[str], name: str, prefix: list[str] | None = None, cwd: Path | None = None, extra=None):
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        cmd = [sys.executable, "-m", "dask", *args]
        if prefix is not None:  # mount the tmpfs in the worker's namespace, then become the worker
            inner = f'mount -t tmpfs tmpfs "{hide}" && cd "{cwd}" && exec "$@"'
            cmd = [*prefix, "sh", "-c", inner, "sh", *cmd]
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**_env(), **(extra or {})}, cwd=cwd, start_new_session=True
        )
        procs.append(proc)
        return proc

    start(["scheduler", "--host", "127.0.0.1", "--port", addr.rsplit(":", 1)[1], "--no-dashboard"], "scheduler")
    worker_procs = []
    for k in range(workers):
        cwd = tmp_path / f"worker-{k}"  # a working folder of its own
        cwd.mkdir()
        args = ["worker", addr, "--nthreads", "1", "--nanny" if nanny else "--no-nanny", "--no-dashboard"]
        args += ["--name", f"w{k}"]
        args += ["--local-directory", str(cwd)]
        worker_procs.append(start(args, f"w{k}", isolate if hide else None, cwd, env))
    try:
        with Client(addr, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield addr, worker_procs
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aebench", "run", *map(str, args), "--quiet"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )


def _same_results(out: Path, reference: Path, rtol: float = 1e-5) -> None:
    got, want = aebench.load_results(out), aebench.load_results(reference)
    assert [str(s) for s in got["status"].values.ravel()] == ["done"] * got["status"].size
    for name in COMPARED:
        np.testing.assert_allclose(got[name].values, want[name].values, rtol=rtol, atol=1e-6, err_msg=name)


def _local(tmp_path: Path, spec: Path) -> Path:
    ref = tmp_path / "local"
    aebench.run(spec, ref, progress=False)
    return ref


MNIST = tiny_toml({"data.name": "mnist"}, seeds=[0, 1])


def test_a_cluster_on_a_shared_disk_equals_a_local_run(tmp_path):
    """The workers cannot load MNIST (AEBENCH_MNIST names no folder there): the client sends it."""
    spec = write_spec(tmp_path, MNIST)
    with dask_cluster(tmp_path, env={"AEBENCH_MNIST": str(tmp_path / "no-mnist-here")}) as (addr, _):
        res = _run_cli(spec, "--out", tmp_path / "out", "--executor", "dask", "--scheduler", addr)
    assert res.returncode == 0, res.stderr
    assert "do not see --out" not in res.stderr  # they do: checkpoints go to --out, nothing to say
    assert res.stderr.count("data set 'mnist' cannot be loaded here") == 2, res.stderr  # one line per worker
    assert "sent from this machine" in res.stderr
    _same_results(tmp_path / "out", _local(tmp_path, spec))


def test_workers_without_the_output_folder_send_their_results_back(tmp_path):
    """Each worker in its own mount namespace: the client's folder is an empty tmpfs there."""
    prefix = isolation()
    if prefix is None:
        pytest.skip("no mount namespace here (unshare -m / -rm refused); the same workers cannot be hidden from --out")
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    spec = write_spec(client_dir, TWO)
    out = client_dir / "out"
    with dask_cluster(tmp_path, hide=client_dir, isolate=prefix) as (addr, _):
        res = _run_cli(spec, "--out", out, "--executor", "dask", "--scheduler", addr)
        assert res.returncode == 0, res.stderr
        # told before it starts: no shared checkpoints, so an interrupted run would restart
        assert "the dask workers do not see --out" in res.stderr and "--checkpoints URL" in res.stderr, res.stderr
        _same_results(out, _local(tmp_path, spec))
        assert all((out / "runs" / f"run-{k:04d}" / "checkpoint.pt").is_file() for k in range(2))
        # a checkpoint store the workers do reach (a local path outside the hidden folder): no warning
        store = tmp_path / "checkpoints"
        args = ["--executor", "dask", "--scheduler", addr, "--checkpoints", store]
        res = _run_cli(spec, "--out", client_dir / "out2", *args)
    assert res.returncode == 0 and "do not see --out" not in res.stderr, res.stderr
    _same_results(client_dir / "out2", out)
    assert store.is_dir() and not list(store.glob("*.pt"))  # used while training, removed once done


def test_a_worker_killed_mid_run_is_retried_on_another_and_the_results_are_the_same(tmp_path):
    from dask.distributed import Client

    spec = write_spec(tmp_path, LONGER)
    out = tmp_path / "out"
    with dask_cluster(tmp_path) as (addr, workers):
        cmd = [sys.executable, "-m", "aebench", "run", spec, "--out", out, "--executor", "dask"]
        proc = subprocess.Popen(
            [*map(str, cmd), "--scheduler", addr, "--quiet"], stderr=subprocess.PIPE, text=True, env=_env()
        )
        with Client(addr) as client:
            names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
            held = None
            deadline = time.monotonic() + 180
            while held is None and time.monotonic() < deadline:  # w0 holds a run that has a checkpoint
                for a, keys in client.processing().items():
                    for key in keys if names.get(a) == "w0" else ():
                        run_id = str(key)[: len("run-0000")]
                        if (out / "runs" / run_id / "checkpoint.pt").exists():
                            held = run_id
                time.sleep(0.05)
        assert held is not None, "worker w0 never started a run"
        workers[0].send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    _same_results(out, _local(tmp_path, spec))
    with aebench.load_results(out) as ds:
        assert ds.attrs["result_bytes"] > 0
    import xarray as xr

    with xr.open_dataset(out / "runs" / held / "metrics.nc") as m:
        assert m.attrs["resumed"] == 1  # the other worker continued from w0's last checkpoint


def _other_mnist(tmp_path: Path) -> Path:
    """A copy of MNIST whose first training label differs, with its own consistent SHA256SUMS."""
    import gzip
    import hashlib

    src = Path(aebench.__file__).resolve().parents[1] / "data" / "mnist"
    dst = tmp_path / "other-mnist"
    dst.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz"):
        (dst / name).symlink_to(src / name)
    labels = bytearray(gzip.decompress((src / "train-labels-idx1-ubyte.gz").read_bytes()))
    labels[8] = (labels[8] + 1) % 10  # the first label (after the 8-byte IDX header)
    (dst / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    sums = [f"{hashlib.sha256((dst / n).read_bytes()).hexdigest()}  {n}" for n in sorted(p.name for p in dst.iterdir())]
    (dst / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return dst


def test_a_worker_with_other_data_is_refused_before_out_is_touched(tmp_path):
    """The cluster's pre-flight (versions, plug-ins, data) runs before anything is written under --out."""
    spec = write_spec(tmp_path, MNIST)
    out = tmp_path / "out"
    with dask_cluster(tmp_path, workers=1, env={"AEBENCH_MNIST": str(_other_mnist(tmp_path))}) as (addr, _):
        res = _run_cli(spec, "--out", out, "--executor", "dask", "--scheduler", addr)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "data set 'mnist' on worker" in res.stderr and "checksums differ" in res.stderr, res.stderr
    assert not out.exists()  # not even the folder


def test_data_sent_to_a_worker_survives_its_restart(tmp_path):
    """A worker that cannot load MNIST is sent it; killed mid-run, its nanny starts it again, and the
    new worker has the data (the client's copy is a WorkerPlugin): the run is retried there and done."""
    from dask.distributed import Client

    spec = write_spec(tmp_path, MNIST.replace("epochs = 2", "epochs = 120"))
    out = tmp_path / "out"
    nowhere = {"AEBENCH_MNIST": str(tmp_path / "no-mnist-here")}
    with dask_cluster(tmp_path, workers=1, env=nowhere, nanny=True) as (addr, _):
        cmd = [sys.executable, "-m", "aebench", "run", spec, "--out", out, "--executor", "dask"]
        proc = subprocess.Popen(
            [*map(str, cmd), "--scheduler", addr, "--quiet"], stderr=subprocess.PIPE, text=True, env=_env()
        )
        with Client(addr) as client:
            deadline = time.monotonic() + 300
            while not (out / "runs" / "run-0000" / "checkpoint.pt").exists():  # training on the only worker
                assert time.monotonic() < deadline and proc.poll() is None, "the run never trained"
                time.sleep(0.05)
            (pid,) = client.run(os.getpid).values()
            os.kill(pid, signal.SIGKILL)  # the worker process, not its nanny
            _, err = proc.communicate(timeout=600)
            (new_pid,) = client.run(os.getpid).values()
    assert new_pid != pid  # a new worker process, started by the nanny
    assert proc.returncode == 0, err
    assert err.count("cannot be loaded here") == 1, err  # sent once, at the pre-flight
    # A nanny-restarted worker runs MKL single-threaded under its AVX2 reproducibility mode, not
    # bitwise thread-invariant: float noise of ~3e-5 relative over 60 epochs (doubt in the closing note).
    _same_results(out, _local(tmp_path, spec), rtol=1e-4)
