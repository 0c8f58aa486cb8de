"""Seed ensembles: every member equals its solo run to float tolerance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from conftest import TINY, tiny_toml, write_spec

import aebench
from aebench.execution import group_runs
from aebench.spec import Spec

SWEEP = dict(
    seeds=[0, 1, 2],
    regularizers=[{"name": "contractive", "weight": 0.01}],
    sweep={"corruption.level": [0.1, 0.3], "optimizer.lr": [0.01, 0.005]},
)


@pytest.mark.parametrize(
    "schedule,optimizer", [("joint", "rmsprop"), ("pretrain-joint-reg", "adam"), ("layerwise", "sgd")]
)
def test_each_member_equals_its_solo_run(tmp_path, schedule, optimizer):
    text = tiny_toml({"schedule.name": schedule, "optimizer.name": optimizer}, **SWEEP)
    solo = aebench.run(write_spec(tmp_path, text, "solo.toml"), out=tmp_path / "solo", progress=False)
    spec = Spec.from_text("ensemble = true\n" + text)
    assert [len(g) for g in group_runs(spec)] == [12]  # seeds, noise levels and lrs share one batched model
    ens = aebench.run(spec, out=tmp_path / "ens", progress=False)
    assert set(ens["status"].values.ravel()) == {"done"}
    for name in ("recon_error", "loss", "recon_error_final"):
        xr.testing.assert_allclose(ens[name], solo[name], rtol=2e-4, atol=1e-5)
    xr.testing.assert_equal(ens["steps"], solo["steps"])


def test_members_with_other_shapes_train_apart(tmp_path):
    spec = Spec.from_text(tiny_toml(ensemble=True, seeds=[0, 1], sweep={"model.layers": [[16], [8, 4]]}))
    assert [len(g) for g in group_runs(spec)] == [2, 2]


def test_a_diverging_member_fails_alone(tmp_path):
    text = tiny_toml(
        {
            "optimizer.name": "sgd",
            "model.activation": "linear",
            "model.output_activation": "linear",
            "model.loss": "squared-error",
        },
        ensemble=True,
        seeds=[0, 1],
        sweep={"optimizer.lr": [0.01, 1e6]},
    )
    ds = aebench.run(Spec.from_text(text), out=tmp_path / "o", progress=False)
    assert list(ds["status"].sel(seed=0).values) == ["done", "failed"]
    assert np.isfinite(ds["recon_error_final"].sel({"optimizer.lr": 0.01})).all()


#: one schedule per stage target (labels twice: from pre-trained weights and from scratch)
TARGETS = {
    "input": {"name": "joint", "epochs": 2},
    "local": {"name": "layerwise", "epochs": 2},
    "labels": [{"name": "joint", "epochs": 1}, {"name": "finetune", "epochs": 4, "patience": 2}],
    "labels-reinit": [{"name": "joint", "epochs": 1}, {"name": "supervised", "epochs": 3}],
    "hybrid": {"name": "hybrid", "epochs": 3, "patience": 2},
}


@pytest.mark.parametrize("target", TARGETS)
def test_every_stage_target_batches_and_each_member_equals_its_solo_run(tmp_path, target):
    sweep = {"optimizer.lr": [0.01, 0.005], **({"schedule.alpha": [0.5, 1.0]} if target == "hybrid" else {})}
    text = tiny_toml(seeds=[0, 1], schedule=TARGETS[target], sweep=sweep)
    solo = aebench.run(write_spec(tmp_path, text, "solo.toml"), out=tmp_path / "solo", progress=False)
    spec = Spec.from_text("ensemble = true\n" + text)
    assert [len(g) for g in group_runs(spec)] == [len(spec.runs)]  # lr (and alpha) differ member by member
    ens = aebench.run(spec, out=tmp_path / "ens", progress=False)
    assert set(ens["status"].values.ravel()) == {"done"}
    names = ["loss", "recon_error", "recon_error_final"] + (["class_error"] if "class_error" in solo else [])
    assert ("class_error" in solo) == target.startswith(("labels", "hybrid"))
    for name in names:
        xr.testing.assert_allclose(ens[name], solo[name], rtol=2e-4, atol=1e-5)
    xr.testing.assert_equal(ens["steps"], solo["steps"])


def test_finetune_with_early_stopping_batches_8_seeds_and_each_stops_where_its_solo_run_stops(tmp_path):
    text = tiny_toml(
        {"optimizer.lr": 0.02},
        seeds=list(range(8)),
        schedule=[{"name": "joint", "epochs": 1}, {"name": "finetune", "epochs": 25, "patience": 2}],
    )
    solo = aebench.run(write_spec(tmp_path, text, "solo.toml"), out=tmp_path / "solo", progress=False)
    ens = aebench.run(Spec.from_text("ensemble = true\n" + text), out=tmp_path / "ens", progress=False)
    last = lambda ds: ds["steps"].max("epoch").values.ravel().tolist()  # noqa: E731
    assert last(ens) == last(solo)
    assert len(set(last(solo))) > 1, last(solo)  # the seeds stop at different epochs: stopping is per member
    assert int(solo["epoch"].max()) < 26  # and some stop before the last epoch
    xr.testing.assert_allclose(ens["class_error"], solo["class_error"], rtol=2e-4, atol=1e-5)
    # each member ends with its best validation weights, as its solo run
    xr.testing.assert_allclose(ens["recon_error_final"], solo["recon_error_final"], rtol=2e-4, atol=1e-5)


class Alone:
    """A plug-in with a model and a custom objective that cannot batch, and two corruptions
    that differ only in whether their knob is marked per-member."""

    @staticmethod
    @aebench.hookimpl
    def aebench_models():
        import torch

        from aebench.models import Stacked

        class Scaled(Stacked):
            name = "scaled"
            summary = "Stacked with a learnt output scale (a parameter of its own: no batched form)."

            def __init__(self, params, n_inputs, generator):
                super().__init__(params, n_inputs, generator)
                self.scale = torch.nn.Parameter(torch.ones(()))

        return [Scaled]

    @staticmethod
    @aebench.hookimpl
    def aebench_corruptions():
        from pydantic import Field

        from aebench.components import Corruption, CorruptionParams, per_member

        class MarkedParams(CorruptionParams):
            sigma: float = per_member(0.1, ge=0, description="Noise level, free per member.")

        class PlainParams(CorruptionParams):
            sigma: float = Field(0.1, ge=0, description="Noise level, not marked.")

        class Marked(Corruption):
            name, summary, Params = "marked", "Gaussian noise, sigma per member.", MarkedParams

            def __call__(self, h, generator):
                import torch

                return h + self.params.sigma * torch.randn(h.shape, generator=generator, device=h.device)

        class Plain(Marked):
            name, summary, Params = "plain", "Gaussian noise, sigma shared.", PlainParams

        return [Marked, Plain]

    @staticmethod
    @aebench.hookimpl
    def aebench_schedules():
        from aebench.components import Schedule, ScheduleParams, Stage

        def recon(ctx, stage, x, y):  # a per-run function: one member at a time
            return ctx.model.reconstruction_loss(x, ctx.model.decode(ctx.model.encode(x), activate=False), 0)

        class Solo(Schedule):
            name, summary, Params = "solo-objective", "A custom objective written for one run.", ScheduleParams

            def stages(self, n_layers):
                return [Stage("solo", tuple(range(n_layers)), n_layers, "custom", self.params.epochs, objective=recon)]

        return [Solo]


@pytest.fixture
def alone():
    from aebench import plugins

    aebench.register_plugin(Alone)
    yield
    plugins._EXTRA.remove(Alone)
    plugins.registry(refresh=True)


def test_which_fields_may_differ_is_declared_on_the_params(alone):
    sweep = dict(ensemble=True, seeds=[0, 1], sweep={"corruption.sigma": [0.1, 0.2]})
    marked = Spec.from_text(tiny_toml(corruption={"name": "marked"}, **sweep))
    plain = Spec.from_text(tiny_toml(corruption={"name": "plain"}, **sweep))
    assert [len(g) for g in group_runs(marked)] == [4]
    assert [len(g) for g in group_runs(plain)] == [2, 2]


@pytest.mark.parametrize(
    "change,why",
    [
        ({"model.name": "scaled"}, "model 'scaled' has no batched form"),
        ({"schedule.name": "solo-objective"}, "the custom objective of schedule 'solo-objective' cannot batch"),
    ],
)
def test_runs_that_cannot_batch_train_solo_with_a_note(tmp_path, alone, caplog, change, why):
    text = tiny_toml(change, seeds=[0, 1])
    solo = aebench.run(Spec.from_text(text), out=tmp_path / "solo", progress=False)
    with caplog.at_level("WARNING", logger="aebench"):
        ens = aebench.run(Spec.from_text("ensemble = true\n" + text), out=tmp_path / "ens", progress=False)
    assert [r.getMessage() for r in caplog.records] == [f"ensemble = true: 2 runs train one at a time: {why}."]
    assert set(ens["status"].values.ravel()) == {"done"}
    for run in (tmp_path / "ens" / "runs").glob("run-*"):
        assert xr.open_dataset(run / "metrics.nc").attrs["ensemble_members"] == 1
    xr.testing.assert_allclose(ens["loss"], solo["loss"])


def test_untied_members_equal_their_solo_runs(tmp_path):
    text = tiny_toml({"model.tied": False}, seeds=[0, 1])
    solo = aebench.run(write_spec(tmp_path, text, "solo.toml"), out=tmp_path / "solo", progress=False)
    ens = aebench.run(Spec.from_text("ensemble = true\n" + text), out=tmp_path / "ens", progress=False)
    for name in ("recon_error", "loss"):
        xr.testing.assert_allclose(ens[name], solo[name], rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("decoder", [False, True])
def test_batched_linear_gradients_match_autograd(decoder):
    """The hand-written backward (weight gradient in the weight's own layout) against gradcheck."""
    import torch

    from aebench.functional import batched_linear

    BatchedLinear = batched_linear("cpu")

    g = torch.Generator().manual_seed(0)
    S, B, n_in, n_out = 3, 5, 7, 4
    W = torch.randn(S, n_out, n_in, generator=g, dtype=torch.float64, requires_grad=True)
    h = torch.randn(S, B, n_out if decoder else n_in, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(S, n_in if decoder else n_out, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h, W, b: BatchedLinear.apply(h, W, b, decoder), (h, W, b))
    out = BatchedLinear.apply(h, W, b, decoder)
    ref = torch.stack([(h[s] @ (W[s] if decoder else W[s].T)) + b[s] for s in range(S)])
    torch.testing.assert_close(out, ref)
    out.sum().backward()
    assert W.grad.is_contiguous()


def test_bfloat16_ensembles_train_in_bfloat16(tmp_path):
    text = tiny_toml(precision="bfloat16", seeds=[0, 1])
    solo = aebench.run(write_spec(tmp_path, text, "solo.toml"), out=tmp_path / "solo", progress=False)
    ens = aebench.run(Spec.from_text("ensemble = true\n" + text), out=tmp_path / "ens", progress=False)
    f32 = aebench.run(
        Spec.from_text(tiny_toml(ensemble=True, seeds=[0, 1])),
        out=tmp_path / "f32",
        progress=False,
    )
    # the ensemble follows the solo bfloat16 runs, not float32 ones
    gap_solo = float(abs(ens["loss"] - solo["loss"]).max())
    gap_f32 = float(abs(ens["loss"] - f32["loss"]).max())
    assert gap_solo < gap_f32 / 10, (gap_solo, gap_f32)


def test_float16_ensembles_are_refused_before_anything_runs(tmp_path):
    from aebench.errors import SpecError

    with pytest.raises(SpecError, match="float16"):
        Spec.from_text('ensemble = true\nprecision = "float16"\n' + TINY)


def test_the_cli_flag_turns_ensembles_on_and_refuses_float16(cli, tmp_path):
    spec = write_spec(tmp_path, tiny_toml(seeds=[0, 1]))
    code, out, err = cli("run", spec, "--out", tmp_path / "o", "--ensemble", "--quiet")
    assert code == 0, err
    ds = xr.open_dataset(tmp_path / "o" / "results.nc")
    assert ds["recon_error_final"].notnull().all()
    assert "ensemble = true" in (tmp_path / "o" / "spec.toml").read_text()
    for run in (tmp_path / "o" / "runs").iterdir():  # each member says it trained in a batch of 2
        assert xr.open_dataset(run / "metrics.nc").attrs["ensemble_members"] == 2
    f16 = write_spec(tmp_path, 'precision = "float16"\n' + TINY, "f16.toml")
    code, out, err = cli("run", f16, "--out", tmp_path / "f16", "--ensemble")
    assert code == 2 and "float16" in err and "Traceback" not in err
    assert not (tmp_path / "f16").exists()


@pytest.mark.parametrize("lrs", [[0.01], [0.01, 0.005]], ids=["torch-optimizer", "batched-optimizer"])
def test_an_interrupted_ensemble_resumes_where_it_stopped(tmp_path, lrs):
    import threading

    from aebench.engine.runner import RunInterrupted

    spec = Spec.from_text(tiny_toml({"schedule.epochs": 4}, ensemble=True, seeds=[0, 1], sweep={"optimizer.lr": lrs}))
    members = 2 * len(lrs)
    reference = aebench.run(spec, out=tmp_path / "ref", progress=False)
    out, stop, seen = tmp_path / "out", threading.Event(), []

    def stop_after_epoch_2(run_id, metrics):
        seen.append(metrics["epoch"])
        if len(seen) == 2 * members:  # every member has finished epoch 2
            stop.set()

    with pytest.raises(RunInterrupted):
        aebench.run(spec, out=out, progress=False, stop=stop, on_epoch=stop_after_epoch_2)
    assert {json.loads(p.read_text())["status"] for p in out.glob("runs/*/status.json")} == {"interrupted"}
    assert len(list(out.glob("runs/.ensemble-*.pt"))) == 1
    again: list[int] = []
    ds = aebench.run(spec, out=out, progress=False, resume=True, on_epoch=lambda run_id, m: again.append(m["epoch"]))
    assert sorted(set(again)) == [3, 4]  # continued from its checkpoint, not from scratch
    assert all(xr.open_dataset(p).attrs["resumed"] == 1 for p in out.glob("runs/*/metrics.nc"))
    assert not list(out.glob("runs/.ensemble-*.pt"))  # each member has its own final checkpoint instead
    xr.testing.assert_equal(ds["steps"], reference["steps"])
    for name in ("loss", "recon_error", "recon_error_final"):
        xr.testing.assert_allclose(ds[name], reference[name], rtol=1e-6, atol=0)


def test_a_reinit_stage_starts_every_member_again_from_its_initial_weights():
    """A plug-in schedule may end with a from-scratch reconstruction stage (``reinit``)."""
    import dataclasses

    import torch

    from aebench.engine.runner import RunOptions, Trainer, build_context

    runs = Spec.from_text(tiny_toml(seeds=[0, 1])).runs
    cpu = torch.device("cpu")

    def contexts():
        ctxs = [build_context(r, cpu) for r in runs]
        for c in ctxs:
            first = c.stages[0]
            c.stages = [
                dataclasses.replace(first, epochs=2),
                dataclasses.replace(first, label="again", epochs=1, reinit=True),
            ]
        return ctxs

    solo = contexts()
    for c in solo:
        Trainer(c, [], RunOptions(cpu, progress=False), None, aebench.registry()).run()
    ens = contexts()
    Trainer(ens, [[], []], RunOptions(cpu, progress=False)).run()
    for a, b in zip(solo, ens):
        for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
            torch.testing.assert_close(pb, pa, rtol=1e-4, atol=1e-5, msg=name)


class EpochLog:
    """A plug-in logger: every (run id, epoch, metrics) it is called with."""

    seen: list = []

    @staticmethod
    @aebench.hookimpl
    def aebench_on_epoch_end(run, epoch, metrics):
        EpochLog.seen.append((run.run_id, epoch, dict(metrics)))
        if run.spec.seed == 1 and epoch == 2:
            run.request_stop("the logger's early stop")


@pytest.fixture
def epoch_log(in_process_plugin):
    EpochLog.seen = []
    in_process_plugin(EpochLog)
    return EpochLog


def test_callbacks_see_every_members_epochs_and_stop_one_member(tmp_path, epoch_log):
    text = tiny_toml({"schedule.epochs": 4}, seeds=[0, 1, 2])
    live = []
    solo = aebench.run(Spec.from_text(text), out=tmp_path / "solo", progress=False)
    solo_seen, epoch_log.seen = list(epoch_log.seen), []
    ens = aebench.run(
        Spec.from_text("ensemble = true\n" + text),
        out=tmp_path / "ens",
        progress=False,
        on_epoch=lambda run_id, m: live.append((run_id, m)),
    )
    by_run = {r: sorted(e for rr, e, _ in epoch_log.seen if rr == r) for r in ("run-0000", "run-0001", "run-0002")}
    assert by_run == {"run-0000": [1, 2, 3, 4], "run-0001": [1, 2], "run-0002": [1, 2, 3, 4]}
    assert sorted((r, e) for r, e, _ in epoch_log.seen) == sorted((r, e) for r, e, _ in solo_seen)
    assert all("recon_error/test" in m for _, _, m in epoch_log.seen)
    assert {r for r, _ in live} == {"run-0000", "run-0001", "run-0002"} and all(
        np.isfinite(m["recon_error/test"]) for _, m in live
    )
    # the stopped member keeps the weights it stopped with, exactly as its solo run
    for seed in (0, 1, 2):
        a, b = ens["recon_error_final"].sel(seed=seed), solo["recon_error_final"].sel(seed=seed)
        xr.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)
    assert int(ens["steps"].sel(seed=1).max()) == int(solo["steps"].sel(seed=1).max())


def test_a_blowing_up_member_fails_alone(tmp_path):
    text = tiny_toml({"schedule.epochs": 3}, ensemble=True, sweep={"optimizer.lr": [0.01, 1e12]})
    ds = aebench.run(Spec.from_text(text), out=tmp_path / "e", progress=False)
    assert str(ds["status"].sel({"optimizer.lr": 0.01}).item()) == "done"
    bad = ds.sel({"optimizer.lr": 1e12})
    assert str(bad["status"].item()) == "failed" and "diverged" in str(bad["reason"].item())


def test_the_compiled_step_equals_eager(tmp_path, cli):
    """``compile = true`` (torch.compile of each batch's loss, forward and backward) trains
    the same members as eager mode, to float tolerance, solo and batched."""
    from torch._dynamo.utils import counters

    text = tiny_toml(seeds=[0, 1], sweep={"optimizer.lr": [0.01, 0.005]})
    eager = aebench.run(Spec.from_text("ensemble = true\n" + text), out=tmp_path / "eager", progress=False)
    graphs = counters["stats"]["unique_graphs"]
    spec = write_spec(tmp_path, "ensemble = true\n" + text)
    code, _, err = cli("run", spec, "--out", tmp_path / "compiled", "--compile", "--quiet")
    assert code == 0, err
    assert "compile = true" in (tmp_path / "compiled" / "spec.toml").read_text()
    compiled = aebench.load_results(tmp_path / "compiled")
    assert counters["stats"]["unique_graphs"] > graphs  # it did compile (no silent eager fallback)
    for name in ("loss", "recon_error", "recon_error_final"):
        xr.testing.assert_allclose(compiled[name], eager[name], rtol=1e-4, atol=1e-5)
    solo = Spec.from_text("compile = true\n" + TINY)
    ds = aebench.run(solo, out=tmp_path / "solo", progress=False)
    one = eager["loss"].sel({"optimizer.lr": 0.01, "seed": 0}, drop=True)
    xr.testing.assert_allclose(ds["loss"].sel(seed=0, drop=True), one, rtol=1e-4, atol=1e-5)


def test_an_interrupted_batch_with_early_stopped_members_resumes_exactly(tmp_path):
    import threading

    from aebench.engine.runner import RunInterrupted

    schedule = [{"name": "joint", "epochs": 1}, {"name": "finetune", "epochs": 12, "patience": 2}]
    spec = Spec.from_text(tiny_toml({"optimizer.lr": 0.02}, ensemble=True, seeds=[0, 1, 2, 3], schedule=schedule))
    reference = aebench.run(spec, out=tmp_path / "ref", progress=False)
    ends = reference["steps"].notnull().sum("epoch").values.ravel().tolist()  # each member's last epoch
    assert min(ends) < max(ends), ends
    out, stop = tmp_path / "out", threading.Event()

    def stop_after_a_member_stopped(run_id, metrics):
        if metrics["epoch"] == min(ends) + 1:  # one member is out, the others train on
            stop.set()

    with pytest.raises(RunInterrupted):
        aebench.run(spec, out=out, progress=False, stop=stop, on_epoch=stop_after_a_member_stopped)
    ds = aebench.run(spec, out=out, progress=False, resume=True)
    xr.testing.assert_equal(ds["steps"], reference["steps"])
    for name in ("loss", "class_error", "recon_error_final"):
        xr.testing.assert_allclose(ds[name], reference[name], rtol=1e-6, atol=0)


class RunStartLog:
    """A plug-in that keeps every run context it is shown at run start."""

    contexts: list = []

    @staticmethod
    @aebench.hookimpl
    def aebench_on_run_start(run):
        RunStartLog.contexts.append(run)


@pytest.fixture
def run_start_log(in_process_plugin):
    RunStartLog.contexts = []
    in_process_plugin(RunStartLog)
    return RunStartLog


def _storages(ctxs, split: str) -> set[int]:
    return {t.untyped_storage().data_ptr() for c in ctxs for t in (c.splits[split].x, c.splits[split].y)}


def test_the_members_of_a_batch_share_one_device_copy_of_each_split(tmp_path, run_start_log):
    """S members once held S copies of the data set on the device, of which training read one."""
    ds = aebench.run(
        Spec.from_text(tiny_toml(ensemble=True, seeds=[0, 1, 2])),
        out=tmp_path / "e",
        progress=False,
    )
    assert (ds["status"] == "done").all()
    ctxs = run_start_log.contexts
    assert len(ctxs) == 3
    for split in ("train", "valid", "test"):
        assert len(_storages(ctxs, split)) == 2, split  # one x and one y for all three members
        assert all(c.splits[split] is ctxs[0].splits[split] for c in ctxs)
    assert all(c.data is ctxs[0].data for c in ctxs)


def test_runs_of_other_data_keep_their_own_copy():
    import torch

    from aebench.engine.runner import build_contexts

    text = tiny_toml(seeds=[0, 1], sweep={"data.subset": [200, 300]})
    runs = Spec.from_text(text).runs
    ctxs = build_contexts(runs, torch.device("cpu"))
    by_subset = {}
    for run, ctx in zip(runs, ctxs):
        by_subset.setdefault(run.data.params.subset, []).append(ctx)
        assert len(ctx.splits["train"]) == run.data.params.subset
    assert {k: len(_storages(v, "train")) for k, v in by_subset.items()} == {200: 2, 300: 2}
    assert _storages(by_subset[200], "train").isdisjoint(_storages(by_subset[300], "train"))
