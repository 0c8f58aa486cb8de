"""Issue 26's capstone: a third party adds one component of every kind, each in one file with
its own entry point, installs it with pip, and aebench finds it everywhere a built-in is found:
``aebench plugins``, the contract suite, a spec that uses them all, the CLI's flags (the
executor's options), the results and the report. No edit of aebench.

The distribution is real: built by pip from a pyproject in ``tmp_path`` and installed into this
test's environment (``pip install --no-deps --no-build-isolation``), uninstalled after.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import xarray as xr
from conftest import run_aebench

DIST = "aebench-thirdparty-kit"

#: module (one file each) -> its source: a component and the hookimpl that returns it
FILES = {
    "tpk_model": '''
        """A model: the stacked autoencoder under a name of its own (batches as it is)."""
        from aebench import hookimpl
        from aebench.models import Stacked

        class Wide(Stacked):
            name = "tpk-stacked"
            summary = "The stacked autoencoder, as a third party's model."

        @hookimpl
        def aebench_models():
            return [Wide]
    ''',
    "tpk_corruption": '''
        """A corruption: flips a fraction of the units (1 - h), drawn from the run's generator."""
        import torch
        from pydantic import Field
        from aebench import hookimpl
        from aebench.components import Corruption, CorruptionParams, per_member

        class FlipParams(CorruptionParams):
            level: float = per_member(0.1, ge=0, le=1, description="Fraction of units flipped.")

        class Flip(Corruption):
            name = "tpk-flip"
            summary = "Flip a fraction of the units to 1 - h."
            Params = FlipParams

            def __call__(self, h, generator):
                mask = torch.rand(h.shape, generator=generator, device=h.device) < self.params.level
                return torch.where(mask, 1 - h, h)

        @hookimpl
        def aebench_corruptions():
            return [Flip]
    ''',
    "tpk_regularizer": '''
        """A regularizer: the mean squared code activation of each layer."""
        from aebench import hookimpl
        from aebench.components import Regularizer

        class CodeL2(Regularizer):
            name = "tpk-code-l2"
            summary = "Mean over the batch of the squared code activations, summed over units."

            def penalty(self, layer, h_in, h_out):
                return (h_out**2).sum(-1).mean()

        @hookimpl
        def aebench_regularizers():
            return [CodeL2]
    ''',
    "tpk_schedule": '''
        """A schedule: the top layer alone first, then the whole stack."""
        from aebench import hookimpl
        from aebench.components import Schedule, Stage

        class TopFirst(Schedule):
            name = "tpk-top-first"
            summary = "Train the top layer alone, then every layer jointly."

            def stages(self, n_layers):
                e, top = self.params.epochs, n_layers - 1
                return [
                    Stage("top", (top,), n_layers, "input", e, lr=self.params.lr),
                    Stage("all", tuple(range(n_layers)), n_layers, "input", e, lr=self.params.lr),
                ]

        @hookimpl
        def aebench_schedules():
            return [TopFirst]
    ''',
    "tpk_dataset": '''
        """A data set: two noisy prototypes, seeded (the same bytes every time)."""
        import numpy as np
        from pydantic import Field
        from aebench import hookimpl
        from aebench.components import DataSplits, Dataset, DatasetParams, Split

        class BlobsParams(DatasetParams):
            seed: int = Field(0, ge=0, description="Seed of the generator.")

        class Blobs(Dataset):
            name = "tpk-blobs"
            summary = "Two noisy binary prototypes in 24 dimensions."
            Params = BlobsParams

            def load(self):
                rng = np.random.default_rng(self.params.seed)
                protos = rng.random((2, 24)) < 0.5
                def split(n):
                    y = rng.integers(0, 2, n)
                    x = np.where(rng.random((n, 24)) < 0.1, ~protos[y], protos[y]).astype(np.uint8)
                    return Split(x, y.astype(np.int64))
                n = self.params.subset or 200
                return DataSplits("tpk-blobs", split(n), split(60), split(60), scale=1.0, shape=(4, 6),
                                  n_classes=2, checksums={"tpk-blobs": f"seed {self.params.seed}"})

        @hookimpl
        def aebench_datasets():
            return [Blobs]
    ''',
    "tpk_evaluator": '''
        """An evaluator with a per-epoch metric and its report declaration."""
        import torch
        import xarray as xr
        from aebench import hookimpl
        from aebench.components import Evaluator
        from aebench.hookspecs import Metric

        ATTRS = {"long_name": "mean top-code activation on the validation split", "units": "1"}

        class CodeMean(Evaluator):
            name = "tpk-code-mean"
            summary = "Mean activation of the top code on the validation split, every epoch."
            reports = (Metric("code_mean_final", title="Mean top-code activation", units="1"),)

            def measure(self, ctx):
                with torch.no_grad():
                    x = ctx.splits["valid"].rows(torch.arange(len(ctx.splits["valid"]), device=ctx.device))
                    return float(ctx.model.encode(x).mean())

            def on_epoch(self, ctx, epoch):
                return {"code_mean": xr.DataArray(self.measure(ctx), attrs=ATTRS)}

            def evaluate(self, ctx):
                return {"code_mean_final": xr.DataArray(self.measure(ctx), attrs=ATTRS)}

        @hookimpl
        def aebench_evaluators():
            return [CodeMean]
    ''',
    "tpk_optimizer": '''
        """An optimizer: sign SGD (element-wise and proportional to lr, so members batch)."""
        import torch
        from aebench import hookimpl
        from aebench.components import Optimizer

        class _SignSGD(torch.optim.Optimizer):
            def __init__(self, params, lr):
                super().__init__(params, {"lr": lr})

            @torch.no_grad()
            def step(self):
                for group in self.param_groups:
                    for p in group["params"]:
                        if p.grad is not None:
                            p.sub_(group["lr"] * torch.sign(p.grad))

        class SignSGD(Optimizer):
            name = "tpk-signsgd"
            summary = "Steps of lr in the direction of the gradient's sign."

            def build(self, params, lr):
                return _SignSGD(params, lr)

        @hookimpl
        def aebench_optimizers():
            return [SignSGD]
    ''',
    "tpk_executor": '''
        """An executor: trains in this process, the last task first, and logs the order."""
        from pathlib import Path
        from pydantic import Field
        from aebench import hookimpl
        from aebench.components import Executor, ExecutorParams

        class ReversedParams(ExecutorParams):
            order_log: str | None = Field(None, description="A file to which each run id is appended as it starts.")

        class Reversed(Executor):
            name = "tpk-reversed"
            summary = "One run after another in this process, the last first."
            Params = ReversedParams

            def map(self, tasks):
                for task in reversed(tasks):
                    task = self.job.start(task)
                    if self.params.order_log:
                        with open(self.params.order_log, "a") as f:
                            f.writelines(f"{r.run_id}\\n" for r in task.runs)
                    self.job.record(task, self.job.train_here(task))

        @hookimpl
        def aebench_executors():
            return [Reversed]
    ''',
    "tpk_callback": '''
        """A callback with state (epochs seen, where it resumed), and a pluggy wrapper on an always-on hook."""
        import json, os, signal
        from pydantic import Field
        from aebench import hookimpl
        from aebench.components import Callback, CallbackParams

        class TallyParams(CallbackParams):
            log: str = Field("", description="A file to which each run appends its tally when it ends.")
            kill_at: int = Field(0, ge=0, description="kill -9 this process after this epoch (0: never), once.")

        class Tally(Callback):
            name = "tpk-tally"
            summary = "Counts the epochs a run has trained, across --resume."
            Params = TallyParams

            def __init__(self, params=None):
                super().__init__(params)
                self.seen, self.resumed_at = 0, 0

            def on_epoch_end(self, run, epoch, metrics):
                self.seen += 1
                if self.params.kill_at and epoch == self.params.kill_at and not self.resumed_at:
                    run.request_checkpoint()

            def on_train_epoch_end(self, run, epoch, loss):
                if self.params.kill_at and epoch == self.params.kill_at + 1 and not self.resumed_at:
                    os.kill(os.getpid(), signal.SIGKILL)  # after the checkpoint of epoch kill_at

            def on_run_end(self, run, result):
                if self.params.log:
                    with open(self.params.log, "a") as f:
                        tally = {"run": run.run_id, "seen": self.seen, "resumed_at": self.resumed_at}
                        f.write(json.dumps(tally) + "\\n")

            def state_dict(self):
                return {"seen": self.seen}

            def load_state_dict(self, state):
                self.seen, self.resumed_at = state["seen"], state["seen"]

        @hookimpl
        def aebench_callbacks():
            return [Tally]

        @hookimpl(wrapper=True)
        def aebench_on_epoch_end(run, epoch, metrics):
            result = yield  # pluggy's own caller runs a wrapper around the other implementations
            path = os.environ.get("TPK_WRAPPER_LOG")
            if path:
                with open(path, "a") as f:
                    f.write(f"{run.run_id} {epoch}\\n")
            return result
    ''',
    "tpk_target": '''
        """A schedule whose one stage has a custom target that declares its own validation criterion."""
        import xarray as xr
        from pydantic import Field
        from aebench import hookimpl
        from aebench.components import Objective, Schedule, ScheduleParams, Stage
        from aebench.hookspecs import Criterion

        class Probe(Objective):
            # the reconstruction, judged on a validation score of its own that is best at epoch 2
            criterion = Criterion("tpk_probe", words="the third party's validation probe")
            blowup = True

            def __call__(self, batch, x, y):
                code, _, _ = batch.encode(x)
                return batch.recon(x, batch.net.decode(code, batch.stage.depth, activate=False), 0)

            def on_epoch(self, ctx, stage):
                n = len(ctx.records) + 1
                return {"tpk_probe": xr.DataArray([0.0, abs(n - 2.0), 0.0], dims="split",
                                                  coords={"split": ["train", "valid", "test"]})}

        class ProbeParams(ScheduleParams):
            patience: int | None = Field(None, ge=1, description="Early stopping on the probe, in epochs.")

        class ProbeSchedule(Schedule):
            name = "tpk-probe"
            summary = "One custom stage, early-stopped on its own criterion."
            Params = ProbeParams

            def stages(self, n_layers):
                p = self.params
                return [Stage("probe", tuple(range(n_layers)), n_layers, "custom", p.epochs,
                              patience=p.patience, objective=Probe())]

        @hookimpl
        def aebench_schedules():
            return [ProbeSchedule]
    ''',
}

#: kind -> (module, component name)
KINDS = {
    "model": ("tpk_model", "tpk-stacked"),
    "corruption": ("tpk_corruption", "tpk-flip"),
    "regularizer": ("tpk_regularizer", "tpk-code-l2"),
    "schedule": ("tpk_schedule", "tpk-top-first"),
    "dataset": ("tpk_dataset", "tpk-blobs"),
    "evaluator": ("tpk_evaluator", "tpk-code-mean"),
    "optimizer": ("tpk_optimizer", "tpk-signsgd"),
    "executor": ("tpk_executor", "tpk-reversed"),
    "callback": ("tpk_callback", "tpk-tally"),
}

SPEC = """\
name = "third-party"
seeds = [0, 1]
data = { name = "tpk-blobs", subset = 120 }
model = { name = "tpk-stacked", layers = [12, 6] }
corruption = { name = "tpk-flip", level = 0.05 }
regularizers = [{ name = "tpk-code-l2", weight = 0.001 }]
schedule = { name = "tpk-top-first", epochs = 2 }
optimizer = { name = "tpk-signsgd", lr = 0.002, batch_size = 40 }
evaluate = { recon = {}, tpk-code-mean = {} }
"""


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The distribution, installed for real into this environment; uninstalled after."""
    proj = tmp_path_factory.mktemp("dist") / DIST
    proj.mkdir()
    for module, source in FILES.items():
        (proj / f"{module}.py").write_text(textwrap.dedent(source).lstrip())
    entry_points = "\n".join(f'{m} = "{m}"' for m in FILES)
    (proj / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "{DIST}"
            version = "0.0.1"
            [tool.setuptools]
            py-modules = [{", ".join(f'"{m}"' for m in FILES)}]
            [project.entry-points.aebench]
            """
        )
        + entry_points
        + "\n"
    )
    done = _pip("install", "-q", "--no-deps", "--no-build-isolation", str(proj))
    assert done.returncode == 0, done.stderr
    try:
        yield proj
    finally:
        _pip("uninstall", "-y", "-q", DIST)


def test_every_kind_is_listed_by_aebench_plugins(installed):
    res = run_aebench(["plugins", "--json"])
    assert res.returncode == 0, res.stderr
    listed = json.loads(res.stdout)
    assert not [b for b in listed["broken"] if b["distribution"] == DIST], listed["broken"]
    for kind, (_, name) in KINDS.items():
        entries = {e["name"]: e for e in listed["kinds"][kind]}
        assert name in entries, (kind, name)
        assert entries[name]["distribution"] == DIST
        assert entries[name]["params"]["type"] == "object"  # its Params, as a JSON schema
    text = run_aebench(["plugins"]).stdout
    assert "order_log = None: A file to which each run id is appended" in text


def test_every_component_passes_the_contract_suite(installed):
    """One check at a time, as ``parametrize_with_checks`` gives a plug-in's own tests."""
    code = textwrap.dedent(
        f"""
        import importlib
        import aebench
        from aebench.testing import checks
        reg = aebench.registry()
        failed = []
        for kind, (module, name) in {KINDS!r}.items():
            cls = reg.get(kind, name)
            assert cls.__module__ == module, (cls.__module__, module)
            for check_name, check in checks(cls):
                try:
                    check(cls)
                except AssertionError as exc:
                    failed.append(f"{{kind}}:{{name}}-{{check_name}}: {{exc}}")
        print("\\n".join(failed) or "all passed")
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("all passed"), res.stdout


def test_a_spec_of_third_party_components_runs_on_a_third_party_executor_and_reports(installed, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    helped = run_aebench(["run", "--help"])
    assert "--order-log ORDER_LOG" in helped.stdout and "tpk-reversed" in helped.stdout  # a flag from its Params
    log, out = tmp_path / "order.txt", tmp_path / "out"
    res = run_aebench(["run", spec, "--out", out, "--executor", "tpk-reversed", "--order-log", log, "--quiet"])
    assert res.returncode == 0, res.stderr
    assert log.read_text().split() == ["run-0001", "run-0000"]  # the executor's own order: it ran them
    ds = xr.load_dataset(out / "results.nc")
    assert [str(s) for s in ds["status"].values] == ["done", "done"]
    assert ds["code_mean"].dims == ("seed", "epoch") and ds.sizes["epoch"] == 4  # two stages of 2 epochs
    assert ds["code_mean"].attrs["units"] == "1" and ds["code_mean"].notnull().all()
    loss = ds["loss"]
    assert (loss.isel(epoch=-1) < loss.isel(epoch=0)).all(), loss.values  # sign SGD trained every run
    assert ds.attrs["spec"].count("tpk-") == 7  # the spec kept every third-party name
    # another executor's flag is refused by name, before anything is written
    bad = run_aebench(["run", spec, "--out", tmp_path / "bad", "--executor", "tpk-reversed", "--workers", "2"])
    assert bad.returncode == 2 and "--workers is not an option of the 'tpk-reversed' executor" in bad.stderr
    assert not (tmp_path / "bad").exists()
    report = run_aebench(["report", out])
    assert report.returncode == 0, report.stderr
    assert "Mean top-code activation" in (out / "report.md").read_text()  # its declared metric's table


def test_a_third_party_callback_keeps_its_state_through_kill_9_and_its_wrapper_runs(installed, tmp_path):
    """The callback's state is in every checkpoint: killed (SIGKILL) after epoch 2 and resumed, it
    has counted all four epochs once; its module's ``wrapper=True`` hook ran on every epoch."""
    log, wrapped = tmp_path / "tally.jsonl", tmp_path / "wrapped.txt"
    spec = tmp_path / "spec.toml"
    spec.write_text(
        SPEC.replace("seeds = [0, 1]", "seeds = [0]")
        + f'callbacks = [{{ name = "tpk-tally", log = "{log}", kill_at = 2 }}]\n'
    )
    out = tmp_path / "out"
    env = {"TPK_WRAPPER_LOG": str(wrapped)}
    killed = run_aebench(["run", spec, "--out", out, "--quiet"], env=env)
    assert killed.returncode == -9, killed.stderr
    again = run_aebench(["run", spec, "--out", out, "--quiet", "--resume"], env=env)
    assert again.returncode == 0, again.stderr
    assert [json.loads(x) for x in log.read_text().splitlines()] == [{"run": "run-0000", "seen": 4, "resumed_at": 2}]
    epochs = [int(line.split()[1]) for line in wrapped.read_text().splitlines()]
    assert sorted(set(epochs)) == [1, 2, 3, 4] and epochs.count(3) == 1  # every epoch, the resumed ones once


def test_a_third_party_target_early_stops_on_its_own_criterion(installed, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        SPEC.replace("seeds = [0, 1]", "seeds = [0]").replace(
            'schedule = { name = "tpk-top-first", epochs = 2 }',
            'schedule = { name = "tpk-probe", epochs = 20, patience = 3 }',
        )
    )
    res = run_aebench(["run", spec, "--out", tmp_path / "out", "--quiet"])
    assert res.returncode == 0, res.stderr
    ds = xr.load_dataset(tmp_path / "out" / "results.nc")
    assert list(ds["epoch"].values) == [1, 2, 3, 4, 5]  # best probe at 2, three worse epochs, stop
