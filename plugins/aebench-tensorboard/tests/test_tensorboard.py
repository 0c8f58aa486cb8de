"""The TensorBoard logger, read back with TensorBoard's own reader and compared with results.nc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tomli_w

import aebench

SPEC = {
    "name": "tb-tiny",
    "seeds": [0, 1],
    "data": {"name": "digits", "subset": 300, "eval_subset": 100},
    "model": {"name": "stacked", "layers": [32, 16]},
    "corruption": {"name": "gaussian", "level": 0.2},
    "schedule": {"name": "joint", "epochs": 3},
    "optimizer": {"name": "rmsprop", "lr": 0.01, "batch_size": 50},
    "callbacks": [{"name": "tensorboard"}],
}


def accumulator(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc, tag: str) -> dict[int, float]:
    events = acc.Scalars(tag)
    steps = [e.step for e in events]
    assert len(steps) == len(set(steps)), f"{tag}: a step logged twice: {steps}"
    return {e.step: e.value for e in events}


def assert_matches_results(out: Path, seeds: list[int]) -> None:
    ds = aebench.load_results(out)
    for k, seed in enumerate(seeds):
        acc = accumulator(out / "tensorboard" / "tb-tiny" / f"run-{k:04d}")
        for split in ("train", "valid"):
            logged = scalars(acc, f"recon_error/{split}")
            truth = ds["recon_error"].sel(seed=seed, split=split)
            assert sorted(logged) == [int(e) for e in truth["epoch"].values]
            for epoch, value in logged.items():
                assert value == pytest.approx(float(truth.sel(epoch=epoch)), rel=1e-6)
        loss = scalars(acc, "loss")
        assert loss == pytest.approx(
            {int(e): float(v) for e, v in zip(ds["epoch"].values, ds["loss"].sel(seed=seed).values)}, rel=1e-6
        )
        final = scalars(acc, "final/recon_error_final/test")
        assert list(final.values()) == pytest.approx(
            [float(ds["recon_error_final"].sel(seed=seed, split="test"))], rel=1e-6
        )


def test_a_two_seed_sweep_is_logged_per_run_with_hparams_and_spec(tmp_path):
    out = tmp_path / "out"
    aebench.run(aebench.Spec.from_dict(SPEC), out=out, progress=False)
    assert_matches_results(out, [0, 1])
    acc = accumulator(out / "tensorboard" / "tb-tiny" / "run-0001")
    # the spec as text, and the hyper-parameters for the HParams dashboard
    text = acc.Tensors("spec/text_summary")[0].tensor_proto.string_val[0].decode()
    assert 'name = "tb-tiny"' in text and "seed = 1" in text
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["seed"].number_value == 1 and hp["optimizer.lr"].number_value == pytest.approx(0.01)
    assert hp["model.layers"].string_value == "[32, 16]"


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


def test_a_killed_and_resumed_run_continues_the_same_tensorboard_run(tmp_path, killer):
    """kill -9 in epoch 2 (after the logger wrote it, before its checkpoint), then --resume:
    one TensorBoard run per member, every epoch once (the orphan epoch purged and written
    again), values equal to results.nc."""
    spec = tmp_path / "spec.toml"
    spec.write_text(tomli_w.dumps({**SPEC, "seeds": [0]}))
    out, flag = tmp_path / "out", tmp_path / "killed"
    first = aebench_cli(["run", spec, "--out", out, "--quiet"], killer, flag, kill_at=2)
    assert first.returncode == -signal.SIGKILL and flag.exists(), first.stderr
    folder = out / "tensorboard" / "tb-tiny" / "run-0000"
    assert sorted(accumulator(folder).Scalars("loss")[i].step for i in range(2)) == [1, 2]  # epoch 2 was written
    again = aebench_cli(["run", spec, "--out", out, "--quiet", "--resume"], killer, flag, kill_at=2)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in (out / "tensorboard" / "tb-tiny").iterdir()] == ["run-0000"]
    assert len(list(folder.glob("events.out.tfevents.*"))) == 2  # one TensorBoard run, continued
    assert_matches_results(out, [0])
    assert np.isfinite(aebench.load_results(out)["recon_error"]).all()


def test_a_folder_it_cannot_write_warns_and_the_run_is_done(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    raw = {**SPEC, "seeds": [0], "callbacks": [{"name": "tensorboard", "logdir": str(blocker / "tb")}]}
    with pytest.warns(UserWarning, match="aebench-tensorboard: cannot log run run-0000"):
        ds = aebench.run(aebench.Spec.from_dict(raw), out=tmp_path / "out", progress=False)
    assert str(ds["status"].sel(seed=0).item()) == "done"
