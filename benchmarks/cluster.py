"""Cluster throughput (`make bench`): 2 dask workers vs 1 on the no-shared-disk path, and the
bytes each run ships back to the client. Real `dask scheduler` / `dask worker` processes on
127.0.0.1, each worker in its own mount namespace (where ``--out`` is an empty tmpfs) when
``unshare`` allows it, else on the same disk (said in the output). Never run from the tests.

Saved to benchmarks/results/cluster-<machine>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
SPEC = """\
name = "bench-cluster"
seeds = [0, 1, 2, 3, 4, 5, 6, 7]
data = { name = "digits", subset = 1000, eval_subset = 300 }
model = { name = "stacked", layers = [64, 32] }
corruption = { name = "gaussian", level = 0.2 }
schedule = { name = "joint", epochs = EPOCHS }
optimizer = { name = "rmsprop", lr = 0.01, batch_size = 50 }
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _isolation() -> list[str] | None:
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "-m", "--propagation", "private"], ["unshare", "-rm"]):
        if subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs tmpfs /mnt 2>/dev/null"]).returncode == 0:
            return prefix
    return None


@contextlib.contextmanager
def cluster(workers: int, hide: Path, prefix: list[str] | None, threads: int):
    from dask.distributed import Client

    addr = f"tcp://127.0.0.1:{_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    procs = []

    def start(cmd: list[str]) -> None:
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    start([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", addr.rsplit(":", 1)[1]])
    for _ in range(workers):
        cmd = [sys.executable, "-m", "dask", "worker", addr, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
        if prefix is not None:
            cmd = [*prefix, "sh", "-c", f'mount -t tmpfs tmpfs "{hide}" && exec "$@"', "sh", *cmd]
        start(cmd)
    try:
        with Client(addr, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield addr
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)


def measure(workers: int, epochs: int, prefix: list[str] | None, threads: int) -> dict:
    import xarray as xr

    with tempfile.TemporaryDirectory() as tmp:
        client_dir = Path(tmp) / "client"
        client_dir.mkdir()
        spec = client_dir / "spec.toml"
        spec.write_text(SPEC.replace("EPOCHS", str(epochs)))
        out = client_dir / "out"
        with cluster(workers, client_dir, prefix, threads) as addr:
            t = time.perf_counter()
            cmd = [sys.executable, "-m", "aebench", "run", str(spec), "--out", str(out), "--quiet"]
            res = subprocess.run([*cmd, "--executor", "dask", "--scheduler", addr], capture_output=True, text=True)
            wall = time.perf_counter() - t
        if res.returncode != 0:
            raise SystemExit(f"the run failed: {res.stderr}")
        with xr.open_dataset(out / "results.nc") as ds:
            runs, shipped = int(ds["status"].size), int(ds.attrs["result_bytes"])
    per_run = shipped // runs
    return {"workers": workers, "runs": runs, "wall_s": wall, "runs_per_s": runs / wall, "bytes_per_run": per_run}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    prefix = _isolation()
    threads = max(1, (os.cpu_count() or 2) // 2)  # the same threads per worker in both settings
    one = measure(1, args.epochs, prefix, threads)
    two = measure(2, args.epochs, prefix, threads)
    where = "own mount namespace per worker (no shared disk)" if prefix else "shared disk (no unshare here)"
    line = {
        "setting": where,
        "one_worker": one,
        "two_workers": two,
        "speedup_2_vs_1": two["runs_per_s"] / one["runs_per_s"],
    }
    print(
        f"cluster, {where}: 2 workers vs 1: {line['speedup_2_vs_1']:.2f}x the runs per second (target: ~2 on 2+ "
        f"free cores); each run ships back {two['bytes_per_run'] / 1024:.0f} KiB"
    )
    target = HERE / "results" / f"cluster-{socket.gethostname()}.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(line, indent=2) + "\n")


if __name__ == "__main__":
    main()
