"""Executors are a plug-in kind: the CLI's flags come from their Params, a flag the chosen
executor does not take is refused by name, and a plug-in's option cannot break the command."""

from __future__ import annotations

import pytest
from pydantic import Field

import aebench
from aebench.cli import build_parser
from aebench.components import Executor, ExecutorParams


class _Params(ExecutorParams):
    queue: str = Field("default", description="The queue to submit to.")
    retries: int = Field(0, ge=0, description="Times a task is tried again.")
    dry: bool = Field(False, description="Only say what would run.")
    device: str = Field("x", description="An option named like one of aebench run's own flags.")


class _Queued(Executor):
    name = "queued"
    summary = "a plug-in executor with options"
    Params = _Params

    def map(self, tasks):
        for task in tasks:
            task = self.job.start(task)
            self.job.record(task, self.job.train_here(task))


class _Plugin:
    @staticmethod
    @aebench.hookimpl
    def aebench_executors():
        return [_Queued]


def _run_parser():
    return build_parser()._subparsers._group_actions[0].choices["run"]


def test_a_plugin_executors_options_are_flags_of_aebench_run(in_process_plugin):
    in_process_plugin(_Plugin)
    with pytest.warns(
        UserWarning,
        match=r"option 'device' of executor\(s\) queued has the name of one of aebench run's own flags \(--device\)",
    ):
        run = _run_parser()
    flags = {o: a for a in run._actions for o in a.option_strings}
    assert "queued" in flags["--executor"].choices
    assert flags["--queue"].type is str and "The queue to submit to. [queued]" == flags["--queue"].help
    assert flags["--retries"].type is int and "--dry" in flags and "--no-dry" in flags
    assert flags["--device"].dest == "device"  # aebench's own flag is untouched
    args = run.parse_args(["s.toml", "--out", "o", "--executor", "queued", "--retries", "2", "--dry"])
    from aebench.cli import executor_table

    assert executor_table(args) == {"name": "queued", "retries": 2, "dry": True}


def test_a_flag_of_another_executor_is_refused_by_name_before_anything_is_written(cli, tmp_path, tiny_spec):
    code, _, err = cli("run", tiny_spec, "--out", tmp_path / "out", "--executor", "process", "--scheduler", "tcp://x")
    assert code == 2 and "--scheduler is not an option of the 'process' executor (its options: --workers)" in err
    code, _, err = cli("run", tiny_spec, "--out", tmp_path / "out", "--executor", "process", "--workers", "0")
    assert code == 2 and "--workers 0: Input should be greater than or equal to 1" in err
    assert not (tmp_path / "out").exists()


def test_an_executor_class_runs_from_python_with_its_options(tmp_path, tiny_spec):
    ds = aebench.run(tiny_spec, out=tmp_path / "out", executor={"name": _Queued, "retries": 1}, progress=False)
    assert str(ds["status"].item()) == "done"
    with pytest.raises(aebench.AebenchError, match="--retries -1"):
        aebench.run(tiny_spec, out=tmp_path / "bad", executor={"name": _Queued, "retries": -1}, progress=False)
    assert not (tmp_path / "bad").exists()
