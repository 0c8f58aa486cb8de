"""The MLflow logger, read back with MLflow's own client and compared with results.nc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomli_w

import aebench

SPEC = {
    "name": "ml-tiny",
    "seeds": [0, 1],
    "data": {"name": "digits", "subset": 300, "eval_subset": 100},
    "model": {"name": "stacked", "layers": [32, 16]},
    "corruption": {"name": "gaussian", "level": 0.2},
    "schedule": {"name": "joint", "epochs": 3},
    "optimizer": {"name": "rmsprop", "lr": 0.01, "batch_size": 50},
    "callbacks": [{"name": "mlflow"}],
}


@pytest.fixture(autouse=True)
def _file_store(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the reader's side; the plug-in sets it for itself


def mlflow_client(out: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())


def runs_by_id(out: Path, experiment: str = "ml-tiny") -> dict:
    client = mlflow_client(out)
    exp = client.get_experiment_by_name(experiment)
    found = client.search_runs([exp.experiment_id])
    by_id = {r.data.tags["aebench.run_id"]: r for r in found}
    assert len(by_id) == len(found), "one MLflow run per aebench run"
    return by_id


def history(client, run_id: str, key: str) -> dict[int, float]:
    """The value of each step (the last one logged, should a killed process have logged it before)."""
    out: dict[int, float] = {}
    for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp):
        out[m.step] = m.value
    return out


def assert_matches_results(out: Path, seeds: list[int]) -> None:
    ds = aebench.load_results(out)
    client = mlflow_client(out)
    runs = runs_by_id(out)
    for k, seed in enumerate(seeds):
        run = runs[f"run-{k:04d}"]
        assert run.info.status == "FINISHED"
        for split in ("train", "valid", "test"):
            logged = history(client, run.info.run_id, f"recon_error/{split}")
            truth = ds["recon_error"].sel(seed=seed, split=split)
            assert sorted(logged) == [int(e) for e in truth["epoch"].values]
            for epoch, value in logged.items():
                assert value == pytest.approx(float(truth.sel(epoch=epoch)), rel=1e-9)
        final = run.data.metrics  # the latest value of each metric
        assert final["recon_error_final/test"] == pytest.approx(
            float(ds["recon_error_final"].sel(seed=seed, split="test")), rel=1e-9
        )
        assert final["train_seconds"] == pytest.approx(float(ds["train_seconds"].sel(seed=seed)), rel=1e-9)


def test_a_two_seed_sweep_is_tracked_with_params_metrics_and_artifacts(tmp_path):
    out = tmp_path / "out"
    aebench.run(aebench.Spec.from_dict(SPEC), out=out, progress=False)
    assert_matches_results(out, [0, 1])
    client = mlflow_client(out)
    run = runs_by_id(out)["run-0001"]
    params = run.data.params
    assert params["seed"] == "1" and params["optimizer.lr"] == "0.01" and params["model.layers"] == "[32, 16]"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"spec.toml", "metrics.nc", "report.md"} <= artifacts
    spec_text = Path(client.download_artifacts(run.info.run_id, "spec.toml", str(tmp_path))).read_text()
    assert 'name = "ml-tiny"' in spec_text and "seed = 1" in spec_text
    import xarray as xr

    nc = client.download_artifacts(run.info.run_id, "metrics.nc", str(tmp_path))
    with xr.open_dataset(nc) as logged:
        assert float(logged["recon_error_final"].sel(split="valid")) == pytest.approx(
            float(aebench.load_results(out)["recon_error_final"].sel(seed=1, split="valid")), rel=1e-9
        )


def test_log_report_attaches_the_sweep_report_to_every_run(tmp_path):
    from aebench_mlflow import log_report

    out = tmp_path / "out"
    aebench.run(aebench.Spec.from_dict({**SPEC, "schedule": {"name": "joint", "epochs": 1}}), out=out, progress=False)
    made = subprocess.run([sys.executable, "-m", "aebench", "report", str(out)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert log_report(out) == 2
    client = mlflow_client(out)
    for run in runs_by_id(out).values():
        assert "report/report.html" in {a.path for a in client.list_artifacts(run.info.run_id, "report")}


KILLER = """
import os, signal
from pathlib import Path
from aebench import hookimpl

@hookimpl
def aebench_on_epoch_end(run, epoch, metrics):
    flag = Path(os.environ["AEBENCH_KILL_FLAG"])
    if epoch == int(os.environ["AEBENCH_KILL_AT"]) and not flag.exists():
        flag.write_text(run.run_id)
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 after the loggers wrote the epoch, before its checkpoint
"""


@pytest.fixture(scope="module")
def killer(tmp_path_factory) -> Path:
    """A throw-away plug-in distribution, pip-installed, that kills its process once (kill -9)."""
    root = tmp_path_factory.mktemp("killer")
    proj = root / "aebench-killer"
    (proj / "aebench_killer").mkdir(parents=True)
    (proj / "aebench_killer" / "__init__.py").write_text(KILLER)
    (proj / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "aebench-killer"
            version = "0.0.1"
            [project.entry-points.aebench]
            killer = "aebench_killer"
            [tool.setuptools]
            packages = ["aebench_killer"]
            """
        )
    )
    site = root / "site"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site)]
    subprocess.run([*cmd, str(proj)], check=True, capture_output=True)
    return site


def aebench_cli(args: list, site: Path, flag: Path, kill_at: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    env.update(AEBENCH_KILL_FLAG=str(flag), AEBENCH_KILL_AT=str(kill_at))
    return subprocess.run(
        [sys.executable, "-m", "aebench", *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )


def test_a_killed_and_resumed_run_continues_the_same_mlflow_run(tmp_path, killer):
    spec = tmp_path / "spec.toml"
    spec.write_text(tomli_w.dumps({**SPEC, "seeds": [0, 1], "ensemble": True}))
    out, flag = tmp_path / "out", tmp_path / "killed"
    first = aebench_cli(["run", spec, "--out", out, "--quiet"], killer, flag, kill_at=2)
    assert first.returncode == -signal.SIGKILL and flag.exists(), first.stderr
    before = {k: r.info.run_id for k, r in runs_by_id(out).items()}
    assert set(before) == {"run-0000", "run-0001"}
    assert all(r.info.status == "RUNNING" for r in runs_by_id(out).values())
    again = aebench_cli(["run", spec, "--out", out, "--quiet", "--resume"], killer, flag, kill_at=2)
    assert again.returncode == 0, again.stderr
    after = runs_by_id(out)
    assert {k: r.info.run_id for k, r in after.items()} == before  # the same MLflow runs, continued
    assert_matches_results(out, [0, 1])


def test_a_store_it_cannot_reach_warns_and_the_run_is_done(tmp_path):
    raw = {**SPEC, "seeds": [0], "callbacks": [{"name": "mlflow", "tracking_uri": "http://127.0.0.1:9", "timeout": 2}]}
    with pytest.warns(UserWarning, match="aebench-mlflow: cannot track run run-0000 at http://127.0.0.1:9"):
        ds = aebench.run(aebench.Spec.from_dict(raw), out=tmp_path / "out", progress=False)
    assert str(ds["status"].sel(seed=0).item()) == "done"
    status = (tmp_path / "out" / "runs" / "run-0000" / "status.json").read_text()
    assert "aebench-mlflow: cannot track" in status
