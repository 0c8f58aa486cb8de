"""Callbacks: hooks through pluggy's own caller, callbacks as a kind with state, and the
Trainer's control (early stopping, divergence, checkpoints) as callbacks over declared criteria."""

from __future__ import annotations

import json
import signal
import types
import warnings

import pytest
import tomli_w
import xarray as xr
from conftest import make_distribution, pip_install_target, run_aebench

import aebench
from aebench.components import Callback, CallbackParams, Objective, Schedule, ScheduleParams, Stage
from aebench.hookspecs import Criterion
from aebench.plugins import AebenchPluginWarning, call_hook

TINY = {
    "name": "tiny",
    "seeds": [0],
    "data": {"name": "digits", "subset": 300, "eval_subset": 100},
    "model": {"name": "stacked", "layers": [32, 16]},
    "corruption": {"name": "gaussian", "level": 0.2},
    "schedule": {"name": "joint", "epochs": 2},
    "optimizer": {"name": "rmsprop", "lr": 0.01, "batch_size": 50},
}


def spec(**changes) -> dict:
    return {**json.loads(json.dumps(TINY)), **changes}


def status(out, run_id="run-0000") -> dict:
    return json.loads((out / "runs" / run_id / "status.json").read_text())


# ------------------------------------------------------------------ 1. pluggy's own caller
def _module(name: str, **hooks) -> types.ModuleType:
    mod = types.ModuleType(name)
    for attr, fn in hooks.items():
        setattr(mod, attr, fn)
    return mod


def test_hooks_run_through_pluggy_wrappers_order_and_isolation(tmp_path, in_process_plugin):
    """Old- and new-style wrappers wrap the plain implementations; tryfirst/trylast order them;
    a plug-in that raises (plain, or a wrapper after its yield) is named in hook_errors while
    the others still run and the run is done."""
    calls: list[str] = []
    hookimpl = aebench.hookimpl

    def new_style(run, epoch, metrics):
        calls.append("new-before")
        result = yield
        calls.append("new-after")
        return result

    def old_style(run, epoch, metrics):
        calls.append("old-before")
        outcome = yield
        calls.append(f"old-after ok={outcome.exception is None}")

    def broken_wrapper(run, epoch, metrics):
        yield
        raise RuntimeError("wrapper boom")

    def broken(run, epoch, metrics):
        raise RuntimeError("boom")

    plugins = [
        _module("p_plain", aebench_on_epoch_end=hookimpl(lambda run, epoch, metrics: calls.append("plain"))),
        _module("p_broken", aebench_on_epoch_end=hookimpl(broken)),
        _module(
            "p_first", aebench_on_epoch_end=hookimpl(tryfirst=True)(lambda run, epoch, metrics: calls.append("first"))
        ),
        _module(
            "p_last", aebench_on_epoch_end=hookimpl(trylast=True)(lambda run, epoch, metrics: calls.append("last"))
        ),
        _module("p_new", aebench_on_epoch_end=hookimpl(wrapper=True)(new_style)),
        _module("p_old", aebench_on_epoch_end=hookimpl(hookwrapper=True)(old_style)),
        _module("p_broken_wrapper", aebench_on_epoch_end=hookimpl(wrapper=True)(broken_wrapper)),
    ]
    for p in plugins:
        in_process_plugin(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AebenchPluginWarning)
        aebench.run(aebench.Spec.from_dict(spec()), out=tmp_path / "o", progress=False)
    epoch1 = calls[: len(calls) // 2]
    assert calls[len(calls) // 2 :] == epoch1  # two epochs, the same calls
    wrappers_in = {"new-before", "old-before"}
    assert set(epoch1[:2]) == wrappers_in
    assert epoch1[2:5] == ["first", "plain", "last"]
    assert set(epoch1[5:]) == {"new-after", "old-after ok=True"}
    st = status(tmp_path / "o")
    assert st["status"] == "done"
    errors = st["hook_errors"]
    assert any("'p_broken'" in e and "boom" in e for e in errors), errors
    assert any("'p_broken_wrapper'" in e and "wrapper boom" in e for e in errors), errors
    assert len(errors) == 2  # each once, not once per epoch


def test_a_wrapper_that_raises_before_its_yield_passes_the_call_through():
    hookimpl = aebench.hookimpl
    seen: list[str] = []

    def early(run, result):
        raise ValueError("before yield")
        yield  # pragma: no cover

    reg = aebench.plugins.build_registry(
        [
            _module("w_early", aebench_on_run_end=hookimpl(wrapper=True)(early)),
            _module("w_plain", aebench_on_run_end=hookimpl(lambda run, result: seen.append(result))),
        ]
    )
    with pytest.warns(AebenchPluginWarning, match="w_early"):
        errors = call_hook(reg, "aebench_on_run_end", run=None, result="R")
    assert seen == ["R"] and len(errors) == 1 and "before yield" in errors[0]


def test_historic_hook_reaches_plugins_added_later():
    """``aebench_registry_ready`` is historic: a plug-in added after the registry was built is
    called at once with it; one that raises is a warning, not a failure."""
    got: list = []
    reg = aebench.plugins.build_registry()
    reg.add_plugin(_module("late", aebench_registry_ready=aebench.hookimpl(lambda registry: got.append(registry))))
    assert got == [reg]

    def bad(registry):
        raise RuntimeError("late and broken")

    with pytest.warns(AebenchPluginWarning, match="late and broken"):
        reg.add_plugin(_module("late_bad", aebench_registry_ready=aebench.hookimpl(bad)))
    reg.add_plugin(_module("later", aebench_registry_ready=aebench.hookimpl(lambda registry: got.append("later"))))
    assert got == [reg, "later"]


# ------------------------------------------------------------------ 2. callbacks as a kind
class CountParams(CallbackParams):
    label: str = "n"
    step: int = 1


class Counter(Callback):
    name = "counter"
    summary = "counts epochs in its state"
    Params = CountParams

    def __init__(self, params=None):
        super().__init__(params)
        self.count = 0
        self.events: list[str] = []

    def on_run_start(self, run):
        self.events.append(f"start {self.count}")

    def on_epoch_end(self, run, epoch, metrics):
        self.count += self.params.step
        run.files[f"{self.params.label}.json"] = json.dumps({"count": self.count, "events": self.events}).encode()

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


def test_callbacks_are_chosen_and_validated_per_spec(tmp_path, in_process_plugin):
    in_process_plugin(_module("counter_plugin", aebench_callbacks=aebench.hookimpl(lambda: [Counter])))
    entry = aebench.registry().entry("callback", "counter")
    assert entry.params_schema()["properties"]["step"]["type"] == "integer"
    with pytest.raises(aebench.SpecError, match=r"callbacks\[0\]\.step"):
        aebench.Spec.from_dict(spec(callbacks=[{"name": "counter", "step": "many"}]))
    with pytest.raises(aebench.SpecError, match=r"callbacks\[0\]\.name = 'countr'.*Did you mean 'counter'"):
        aebench.Spec.from_dict(spec(callbacks=[{"name": "countr"}]))
    s = aebench.Spec.from_dict(spec(callbacks=[{"name": "counter", "step": 3, "label": "c"}]))
    names = [c.name for c in s.runs[0].callbacks]
    assert names == ["checkpoint", "divergence", "early-stopping", "counter"]  # the defaults, then the spec's
    aebench.run(s, out=tmp_path / "o", progress=False)
    got = json.loads((tmp_path / "o" / "runs" / "run-0000" / "c.json").read_text())
    assert got == {"count": 6, "events": ["start 0"]}  # 2 epochs × step 3: its own Params
    # a spec without it: the callback does not run
    aebench.run(aebench.Spec.from_dict(spec()), out=tmp_path / "p", progress=False)
    assert not (tmp_path / "p" / "runs" / "run-0000" / "c.json").exists()


def test_a_callback_state_that_is_not_plain_data_is_dropped_and_named(tmp_path, in_process_plugin):
    class Odd(Counter):
        name = "odd"

        def state_dict(self):
            return {"when": object()}

    in_process_plugin(_module("odd_plugin", aebench_callbacks=aebench.hookimpl(lambda: [Odd])))
    aebench.run(aebench.Spec.from_dict(spec(callbacks=[{"name": "odd"}])), out=tmp_path / "o", progress=False)
    st = status(tmp_path / "o")
    assert st["status"] == "done"
    assert any("'odd'" in e and "state_dict() returned a object" in e for e in st["hook_errors"])


CALLBACK_DIST = """
import json, os, signal
from pathlib import Path
from aebench import hookimpl
from aebench.components import Callback, CallbackParams


class TallyParams(CallbackParams):
    log: str
    die_at: int = 0


class Tally(Callback):
    name = "tally"
    summary = "Counts the epochs it has seen, across --resume; kills its process once at die_at."
    Params = TallyParams

    def __init__(self, params=None):
        super().__init__(params)
        self.seen = 0
        self.resumed_at = None

    def load_state_dict(self, state):
        self.seen = state["seen"]
        self.resumed_at = state["seen"]

    def state_dict(self):
        return {"seen": self.seen}

    def on_train_epoch_end(self, run, epoch, loss):
        flag = Path(self.params.log + ".killed")
        if epoch == self.params.die_at and not flag.exists():
            flag.write_text("x")
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9: the last checkpoint is epoch die_at - 1's

    def on_epoch_end(self, run, epoch, metrics):
        self.seen += 1

    def on_run_end(self, run, result):
        line = {"run": run.run_id, "seen": self.seen, "resumed_at": self.resumed_at}
        with open(self.params.log, "a") as fh:
            fh.write(json.dumps(line) + "\\n")


@hookimpl
def aebench_callbacks():
    return [Tally]
"""


@pytest.fixture(scope="module")
def tally_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("tally")
    proj = make_distribution(root, "aebench-tally", "aebench_tally", CALLBACK_DIST)
    pip_install_target(proj, root / "site")
    return root / "site"


@pytest.mark.parametrize("ensemble", [False, True], ids=["solo", "ensemble"])
def test_callback_state_survives_kill_9_and_resume(tmp_path, tally_site, ensemble):
    """A callback from a pip-installed distribution keeps its state in the checkpoint: the run is
    killed with SIGKILL in epoch 3 and continued with --resume; each member's callback has then
    seen every epoch once (4), and says it resumed from 2."""
    log = tmp_path / "tally.jsonl"
    raw = spec(
        seeds=[0, 1] if ensemble else [0],
        ensemble=ensemble,
        schedule={"name": "joint", "epochs": 4},
        callbacks=[{"name": "tally", "log": str(log), "die_at": 3}],
    )
    path = tmp_path / "spec.toml"
    path.write_text(tomli_w.dumps(raw))
    out = tmp_path / "out"
    first = run_aebench(["run", path, "--out", out, "--quiet"], pythonpath=tally_site)
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert not log.exists()
    again = run_aebench(["run", path, "--out", out, "--quiet", "--resume"], pythonpath=tally_site)
    assert again.returncode == 0, again.stderr
    lines = sorted((json.loads(x) for x in log.read_text().splitlines()), key=lambda d: d["run"])
    runs = ["run-0000", "run-0001"] if ensemble else ["run-0000"]
    assert lines == [{"run": r, "seen": 4, "resumed_at": 2} for r in runs]
    assert all(status(out, r)["status"] == "done" for r in runs)


# ------------------------------------------------- 3. the Trainer's control over declared criteria
class Probe(Objective):
    """The input reconstruction, with a validation 'probe' of its own that worsens every epoch
    after the second (so early stopping on it stops at epoch 2 + patience)."""

    criterion = Criterion("probe", words="validation probe")
    blowup = True

    def __init__(self, explode: bool = False, nan: bool = False):
        self.explode, self.nan, self.calls = explode, nan, 0

    def __call__(self, batch, x, y):
        code, _, _ = batch.encode(x)
        loss = batch.recon(x, batch.net.decode(code, batch.stage.depth, activate=False), 0)
        self.calls += 1
        if self.nan and self.calls > 3:
            return loss * float("nan")
        return loss * (1e4 if self.explode and self.calls > 1 else 1.0)

    def on_epoch(self, ctx, stage):
        n = len(ctx.records) + 1
        value = [0.0, abs(n - 2.0), 0.0]
        return {"probe": xr.DataArray(value, dims="split", coords={"split": ["train", "valid", "test"]})}


class ProbeParams(ScheduleParams):
    patience: int | None = None
    mode: str = "plain"
    blowup: bool = True
    criterion: bool = True


class ProbeSchedule(Schedule):
    name = "probe-schedule"
    summary = "one custom stage"
    Params = ProbeParams

    def stages(self, n_layers):
        p = self.params
        objective = Probe(explode=p.mode == "explode", nan=p.mode == "nan")
        if not p.blowup:
            objective.blowup = False
        if not p.criterion:
            objective.criterion = None
        return [
            Stage(
                "probe", tuple(range(n_layers)), n_layers, "custom", p.epochs, patience=p.patience, objective=objective
            )
        ]


@pytest.fixture
def probe_schedule(in_process_plugin):
    in_process_plugin(_module("probe_sched", aebench_schedules=aebench.hookimpl(lambda: [ProbeSchedule])))


def _run(tmp_path, schedule, **changes):
    out = tmp_path / "o"
    ds = aebench.run(aebench.Spec.from_dict(spec(schedule=schedule, **changes)), out=out, progress=False)
    return ds, status(out)


def test_custom_objective_with_patience_early_stops_on_its_own_criterion(tmp_path, probe_schedule):
    ds, st = _run(tmp_path, {"name": "probe-schedule", "epochs": 20, "patience": 3})
    assert st["status"] == "done"
    assert list(ds["epoch"].values) == [1, 2, 3, 4, 5]  # best at 2, three worse epochs, stop
    assert float(ds["probe"].sel(seed=0, split="valid", epoch=2)) == 0.0


def test_early_stopping_params_from_the_spec_override_the_stage(tmp_path, probe_schedule):
    cb = [{"name": "early-stopping", "patience": 1}]
    ds, _ = _run(tmp_path, {"name": "probe-schedule", "epochs": 20}, callbacks=cb)
    assert list(ds["epoch"].values) == [1, 2, 3]


def test_patience_on_a_target_without_criterion_fails_saying_so(tmp_path, probe_schedule):
    _, st = _run(tmp_path, {"name": "probe-schedule", "epochs": 5, "patience": 2, "criterion": False})
    assert st["status"] == "failed" and "declares no validation criterion" in st["reason"]


@pytest.mark.parametrize("mode", ["explode", "nan"])
def test_custom_objective_that_diverges_is_marked_failed(tmp_path, probe_schedule, mode):
    _, st = _run(tmp_path, {"name": "probe-schedule", "epochs": 3, "mode": mode})
    assert st["status"] == "failed" and "training diverged" in st["reason"], st


def test_a_custom_loss_declared_no_yardstick_is_not_failed_for_rising(tmp_path, probe_schedule):
    _, st = _run(tmp_path, {"name": "probe-schedule", "epochs": 2, "mode": "explode", "blowup": False})
    assert st["status"] == "done"


def test_divergence_factor_is_the_callbacks_own_param(tmp_path, probe_schedule):
    cb = [{"name": "divergence", "factor": 1e6}]
    _, st = _run(tmp_path, {"name": "probe-schedule", "epochs": 2, "mode": "explode"}, callbacks=cb)
    assert st["status"] == "done"  # 1e4× its start is below 1e6×


def test_the_runner_holds_no_branch_on_target_names():
    """The target list is declared once (engine/stage.py TARGETS); the Trainer reads declarations."""
    from pathlib import Path

    import aebench.engine.runner as runner
    from aebench.engine.stage import TARGETS

    source = Path(runner.__file__).read_text()
    for name in TARGETS:
        assert f'"{name}"' not in source, name
    assert Stage.__dataclass_fields__["target"].type in ("str", str)  # no second list of names


def test_checkpoint_every_is_honoured(tmp_path, monkeypatch):
    """The checkpoint callback decides when the Trainer writes: every 2 epochs of 3 → once."""
    from aebench.engine import checkpoint

    saves: list[int] = []
    real = checkpoint.save_checkpoint
    monkeypatch.setattr(checkpoint, "save_checkpoint", lambda path, state: (saves.append(1), real(path, state)))
    raw = spec(schedule={"name": "joint", "epochs": 3}, callbacks=[{"name": "checkpoint", "every": 2}])
    aebench.run(aebench.Spec.from_dict(raw), out=tmp_path / "o", progress=False)
    assert len(saves) == 1
