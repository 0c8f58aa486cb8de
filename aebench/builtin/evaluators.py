"""Evaluators: the measurements of Zhou et al. and Erhan et al., written as xarray variables."""

from __future__ import annotations

import copy
import math
from typing import Literal

import numpy as np
import torch
import xarray as xr
from pydantic import Field, field_validator

from aebench.builtin import schedules
from aebench.components import SPLITS, Evaluator, Params
from aebench.errors import RunFailed
from aebench.evaluate.chain import markov_chain, mean_nearest_distance, nearest_rows
from aebench.evaluate.search import search_optimum
from aebench.evaluate.stats import binomial_ci
from aebench.functional import parzen_log_likelihood, parzen_window
from aebench.hookspecs import Criterion, Estimate, Figure, Metric, Note, hookimpl
from aebench.training import train


def _attrs(long_name: str, units: str = "1") -> dict[str, str]:
    return {"long_name": long_name, "units": units}


def _image_dims(ctx, flat: torch.Tensor, lead: tuple[str, ...]) -> xr.DataArray:
    """Reshape (..., features) into (..., pixel_y, pixel_x) when the data set has an image shape."""
    arr = flat.detach().cpu().numpy()
    shape = ctx.data.shape
    if len(shape) == 2 and shape[0] * shape[1] == arr.shape[-1]:
        return xr.DataArray(arr.reshape(*arr.shape[:-1], *shape), dims=(*lead, "pixel_y", "pixel_x"))
    return xr.DataArray(arr, dims=(*lead, "pixel"))


# ---------------------------------------------------------------------------- recon
class ReconParams(Params):
    max_rows: int | None = Field(None, ge=1, description="Measure on the first N rows of each split; default: all.")
    batch_size: int = Field(1000, ge=1, description="Rows per evaluation batch.")
    every: int = Field(1, ge=0, description="Measure every N epochs (0: only after training).")


class Recon(Evaluator):
    name = "recon"
    summary = "Input-space reconstruction error per epoch on train/valid/test, through the whole stack and per depth."
    Params = ReconParams
    reports = (
        Metric(
            "recon_test",
            title="Test reconstruction error through the whole stack",
            source="recon_error_final",
            where={"split": "test"},
        ),
        Criterion("recon_error_final", words="validation reconstruction error", default=True),
        Figure("recon_curves", needs="recon_error", draw="aebench.plots:recon_curves", title="Reconstruction curves"),
        Figure(
            "recon_curves_steps",
            needs="recon_error",
            draw="aebench.plots:recon_curves_by_steps",
            title="Reconstruction curves against gradient steps (layer-wise takes one epoch's steps per layer)",
        ),
    )
    last: xr.DataArray | None = None
    _seen: tuple = ()

    def on_epoch(self, ctx, epoch):
        every = self.params.every
        if epoch and (every == 0 or epoch % every):
            return None
        return self.measure(ctx)

    def measure(self, ctx):
        model, p = ctx.model, self.params
        n = model.n_layers
        sums = torch.zeros(len(SPLITS), n, dtype=torch.float64)
        for s, split in enumerate(SPLITS):
            rows = 0
            for x, _ in ctx.batches(split, p.batch_size, p.max_rows):
                h = x
                for depth in range(1, n + 1):
                    h = model.encode_layer(depth - 1, h)
                    pre = model.decode(h, depth, activate=False)
                    sums[s, depth - 1] += float(model.reconstruction_loss(x, pre, 0)) * len(x)
                rows += len(x)
            sums[s] /= max(rows, 1)
        units = (
            "nats per example" if getattr(model.params, "loss", "") == "cross-entropy" else "squared error per example"
        )
        coords = {"split": list(SPLITS), "depth": list(range(1, n + 1))}
        by_depth = xr.DataArray(
            sums.numpy(),
            dims=("split", "depth"),
            coords=coords,
            attrs=_attrs("input-space reconstruction error using the bottom `depth` layers", units),
        )
        full = by_depth.sel(depth=n, drop=True).assign_attrs(
            long_name="input-space reconstruction error through the whole stack (clean input)", units=units
        )
        self.last, self._seen = full, _weights_version(model)
        return {"recon_error": full, "recon_error_layer": by_depth}

    def evaluate(self, ctx):
        # The last epoch's measurement is the final one only if the weights have not moved
        # since: early stopping restores the best epoch's weights after the last epoch.
        if self.last is None or self._seen != _weights_version(ctx.model):
            with torch.no_grad():
                self.measure(ctx)
        last = self.last
        return {"recon_error_final": last.assign_attrs(long_name="reconstruction error after training (whole stack)")}


def _weights_version(model: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    """Which tensors the weights are and how often each was changed in place (an optimizer
    step or a restore changes the count): equal tuples mean the same weights."""
    return tuple((id(p), p._version) for p in model.parameters())


# ------------------------------------------------------------------------------ svm
class SvmParams(Params):
    C: list[float] = Field(
        [0.01, 0.1, 1.0, 10.0],
        min_length=1,
        description="Grid of C tried first; the best on validation is used (extended while it is at an edge).",
    )
    search: bool = Field(True, description="Extend the C grid by decades while the best C is at its edge.")
    C_bounds: tuple[float, float] = Field((1e-5, 1e5), description="The search never goes past these C values.")
    max_train: int | None = Field(None, ge=10, description="Fit on the first N training rows; default: all.")
    max_iter: int = Field(2000, ge=10, description="Iterations of liblinear per fit.")
    pixels: bool = Field(
        True,
        description="Also fit the same SVM (same rows, grid and search) on the raw pixels: the baseline "
        "that learned features must beat (svm_pixels_error; computed once per data set in a process).",
    )

    _grid = field_validator("C")(classmethod(lambda cls, v: _check_grid(v, "C")))

    _bounds = field_validator("C_bounds")(classmethod(lambda cls, v: _check_bounds(v)))


def _check_grid(v: list[float], what: str) -> list[float]:
    if any(not (x > 0 and math.isfinite(x)) for x in v):
        raise ValueError(f"every {what} must be a positive finite number")
    return v


def _check_bounds(v: tuple[float, float]) -> tuple[float, float]:
    if not (0 < v[0] < v[1] and math.isfinite(v[1])):
        raise ValueError(f"bounds must be two finite numbers 0 < low < high, got {list(v)}")
    return v


def linear_svm_errors(train, valid, test, Cs, max_iter: int = 2000, search: bool = False, bounds=(1e-5, 1e5)):
    """Fit a linear SVM per C on (features, labels); return (search result, test error at the chosen C).

    With ``search`` the grid is extended by factors of 10 while the best C on validation is
    at its edge (:func:`aebench.evaluate.search.search_optimum`).
    """
    from sklearn.svm import LinearSVC

    fits: dict[float, LinearSVC] = {}

    def valid_error(C: float) -> float:
        fits[C] = LinearSVC(C=C, max_iter=max_iter).fit(*train)
        return float((fits[C].predict(valid[0]) != valid[1]).mean())

    found = search_optimum(
        valid_error, list(Cs), maximize=False, bounds=bounds, factor=10.0, max_extend=4 if search else 0
    )
    return found, float((fits[found.best].predict(test[0]) != test[1]).mean())


def _edge_flag(found, what: str) -> xr.DataArray:
    return xr.DataArray(
        float(found.at_edge),
        attrs=_attrs(
            f"1 when the {what} chosen on validation is the smallest or largest tried (a limit, not an optimum)"
        ),
    )


class Svm(Evaluator):
    name = "svm"
    summary = (
        "Linear SVM on top-layer features; C chosen on validation (searched until interior); "
        "test error ± 95% binomial CI (Zhou et al. Tables II–IV)."
    )
    Params = SvmParams
    reports = (
        Metric(
            "svm_error",
            title="Linear SVM test error",
            units="%",
            scale=100,
            interval="svm_error_ci",
            interval_words="binomial interval over the test examples",
            criterion=Criterion("svm_valid_error", words="linear SVM validation error (best C)", best_over=("C",)),
            estimates=(Estimate("svm_C", at_edge="svm_C_at_edge", what="SVM C"),),
            reference="svm_pixels_error",
            reference_words="raw pixels",
        ),
        Metric(
            "svm_pixels_error",
            title="Linear SVM test error on raw pixels",
            units="%",
            scale=100,
            interval="svm_pixels_error_ci",
            interval_words="binomial interval over the test examples",
            figure="none",
            summary=False,
        ),
        Note(
            lambda v: (
                f"linear SVM C grid {v['C']} "
                + ("(extended by decades while the best C is at an edge)" if "True" in v["search"] else "(fixed)")
            )
        ),
    )

    def evaluate(self, ctx):
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        p = self.params
        feats = {s: ctx.features(s).cpu().numpy() for s in SPLITS}
        labels = {s: ctx.splits[s].y.cpu().numpy() for s in SPLITS}
        n = p.max_train or len(labels["train"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            found, test_err = linear_svm_errors(
                (feats["train"][:n], labels["train"][:n]),
                (feats["valid"], labels["valid"]),
                (feats["test"], labels["test"]),
                p.C,
                p.max_iter,
                p.search,
                p.C_bounds,
            )
        n_test = len(labels["test"])
        pixels = {}
        if p.pixels:
            err = _pixels_svm_error(ctx, p, n)
            pixels = {
                "svm_pixels_error": xr.DataArray(err, attrs=_attrs("linear SVM test error on raw pixels (same split)")),
                "svm_pixels_error_ci": xr.DataArray(
                    binomial_ci(err, n_test), attrs=_attrs("95% binomial CI half-width of svm_pixels_error")
                ),
            }
        return {
            **pixels,
            "svm_error": xr.DataArray(test_err, attrs=_attrs("linear SVM test error on top-layer features")),
            "svm_error_ci": xr.DataArray(
                binomial_ci(test_err, n_test), attrs=_attrs("95% binomial CI half-width of svm_error")
            ),
            "svm_C": xr.DataArray(found.best, attrs=_attrs("C chosen on the validation split")),
            "svm_C_at_edge": _edge_flag(found, "C"),
            "svm_valid_error": xr.DataArray(
                found.scores,
                dims="C",
                coords={"C": found.values},
                attrs=_attrs("linear SVM validation error per C tried"),
            ),
        }


_PIXELS: dict[tuple, float] = {}


def _pixels_svm_error(ctx, p: SvmParams, n: int) -> float:
    """Test error of the same SVM protocol on raw pixels (in [0, 1]): the same for every run on the same
    data, so computed once per process and key (data set, its checksums, rows, grid, search)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    sizes = tuple(len(ctx.splits[s]) for s in SPLITS)
    key = (
        ctx.data.name,
        tuple(sorted(ctx.data.checksums.items())),
        sizes,
        n,
        tuple(p.C),
        p.max_iter,
        p.search,
        p.C_bounds,
    )
    if key not in _PIXELS:
        x = {s: ctx.data.split(s).x[: sizes[k]].astype(np.float32) * ctx.data.scale for k, s in enumerate(SPLITS)}
        y = {s: ctx.data.split(s).y[: sizes[k]] for k, s in enumerate(SPLITS)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, err = linear_svm_errors(
                (x["train"][:n], y["train"][:n]),
                (x["valid"], y["valid"]),
                (x["test"], y["test"]),
                p.C,
                p.max_iter,
                p.search,
                p.C_bounds,
            )
        _PIXELS[key] = err
    return _PIXELS[key]


def _derived_seed(ctx, purpose: str) -> int:
    """A seed for an evaluator's own random stream: fixed by the run's seed and the purpose."""
    import zlib

    return (int(ctx.spec.seed) * 1_000_003 + zlib.crc32(purpose.encode())) % 2**63


# ------------------------------------------------------------------------- finetune
class FinetuneParams(Params):
    epochs: int = Field(1000, ge=1, description="Maximum epochs (Zhou et al.: at most 1,000, with early stopping).")
    patience: int = Field(20, ge=1, description="Stop after this many epochs without a better validation error.")
    lr: float | None = Field(None, gt=0, description="Learning rate; default: the run's optimizer's.")


class Finetune(Evaluator):
    name = "finetune"
    summary = "A copy of the encoder + softmax trained on labels with early stopping; test error ± 95% CI."
    Params = FinetuneParams
    reports = (
        Metric(
            "finetune_error",
            title="Fine-tuned test error",
            units="%",
            scale=100,
            interval="finetune_error_ci",
            interval_words="binomial interval over the test examples",
            criterion=Criterion(
                "finetune_curve",
                name="finetune_valid_error",
                words="fine-tuned validation error (best epoch)",
                best_over=("finetune_epoch",),
            ),
        ),
        Note(
            lambda v: (
                f"fine-tuning at most {v['epochs']} epochs with patience {v['patience']} on validation "
                "error, learning rate " + ("= the pre-training learning rate" if v["lr"] == "default" else v["lr"])
            )
        ),
        Figure(
            "error_histogram",
            needs="finetune_error",
            draw="aebench.plots:error_histogram",
            title="Fine-tuned test error over seeds",
        ),
    )

    def evaluate(self, ctx):
        p = self.params
        sub = copy.copy(ctx)
        sub.model = copy.deepcopy(ctx.model)  # the run's own model is left as trained
        sub.records, sub.hook_errors, sub.files = [], [], {}  # the run's own stay the run's
        # Its own stream: fine-tuning must not move the run's generator, or running this
        # evaluator would change what the evaluators after it (Parzen chains, samples) see.
        sub.generator = torch.Generator(ctx.generator.device).manual_seed(_derived_seed(ctx, "finetune"))
        sub.head = torch.nn.Linear(sub.model.sizes[-1], max(ctx.data.n_classes, 2)).to(ctx.device)
        torch.nn.init.zeros_(sub.head.weight)
        torch.nn.init.zeros_(sub.head.bias)
        # the finetune schedule's own stage, trained by the engine's own loop (early stopping included)
        params = schedules.Finetune.Params(epochs=p.epochs, patience=p.patience, lr=p.lr)
        sub.stages = schedules.Finetune(params).stages(sub.model.n_layers)
        try:
            curve = [r.by_split("class_error") for r in train(sub)]
        except RunFailed as exc:
            raise RunFailed(f"the finetune evaluator's training failed: {exc}") from None
        best = min(curve, key=lambda errs: errs["valid"])  # first epoch with the best validation error
        test_err = best["test"]
        return {
            "finetune_error": xr.DataArray(test_err, attrs=_attrs("fine-tuned MLP test error (best validation epoch)")),
            "finetune_error_ci": xr.DataArray(
                binomial_ci(test_err, len(ctx.splits["test"])),
                attrs=_attrs("95% binomial CI half-width of finetune_error"),
            ),
            "finetune_curve": xr.DataArray(
                np.array([[errs[s] for s in SPLITS] for errs in curve]),
                dims=("finetune_epoch", "split"),
                coords={"finetune_epoch": np.arange(1, len(curve) + 1), "split": list(SPLITS)},
                attrs=_attrs("classification error per fine-tuning epoch"),
            ),
        }


# --------------------------------------------------------------------------- parzen
class ChainParams(Params):
    samples: int = Field(10000, ge=1, description="Samples kept from the chain (Zhou et al.: 10,000 consecutive).")
    chains: int = Field(
        1, ge=1, description="Independent chains run in parallel (Zhou et al.: one chain of consecutive samples)."
    )
    burn_in: int = Field(100, ge=0, description="Steps dropped at the start of every chain.")
    thin: int = Field(1, ge=1, description="Keep every thin-th state.")
    bernoulli: bool = Field(False, description="Draw X ~ Bernoulli(mean) in the chain instead of using the mean.")
    start: Literal["noise", "train"] = Field(
        "noise",
        description=(
            "Chain start: 'noise' (a training row with its pixels shuffled: only a chain that moves to the data "
            "scores well) or 'train' (a training row: a chain that stalls there scores like the training set)."
        ),
    )


class ParzenParams(ChainParams):
    sigma: list[float] = Field(
        [0.05, 0.1, 0.15, 0.2, 0.25, 0.3],
        min_length=1,
        description="Parzen widths tried first; the best on validation is used (extended while it is at an edge).",
    )
    search: bool = Field(
        True, description="Extend the σ grid (×/÷ 1.5 steps) while the best σ is at its edge, then refine around it."
    )
    sigma_bounds: tuple[float, float] = Field((0.005, 5.0), description="The search never goes past these widths.")
    refine: int = Field(2, ge=0, description="Rounds of geometric midpoints tried around the best σ.")
    max_rows: int | None = Field(None, ge=1, description="Evaluate on the first N validation/test rows; default: all.")
    batch_size: int = Field(1000, ge=1, description="Block size of the log-sum-exp (bounds memory).")
    distance_rows: int = Field(
        1000, ge=1, description="Samples and test rows whose distance to the nearest training row is measured."
    )

    _grid = field_validator("sigma")(classmethod(lambda cls, v: _check_grid(v, "sigma")))

    _bounds = field_validator("sigma_bounds")(classmethod(lambda cls, v: _check_bounds(v)))


def chain_samples(ctx, p: ChainParams) -> torch.Tensor:
    length = math.ceil(p.samples / p.chains)
    s = markov_chain(ctx, p.chains, length, p.burn_in, p.thin, p.bernoulli, start=p.start)
    return s.reshape(-1, s.shape[-1])[: p.samples]


class Parzen(Evaluator):
    name = "parzen"
    summary = (
        "Test log-likelihood under a Gaussian Parzen window fit on samples of the DAE's Markov chain (eq. 14–15); "
        "σ chosen on validation, searched until interior."
    )
    Params = ParzenParams
    reports = (
        Metric(
            "parzen_ll",
            title="Parzen test log-likelihood",
            units="nats",
            higher_is_better=True,
            interval="parzen_ll_se",
            interval_factor=1.96,
            interval_words="1.96 × the standard error over the test rows",
            criterion=Criterion(
                "parzen_valid_ll",
                words="Parzen validation log-likelihood (best σ)",
                higher_is_better=True,
                best_over=("sigma",),
            ),
            estimates=(Estimate("parzen_sigma", at_edge="parzen_sigma_at_edge", what="Parzen σ"),),
        ),
        Note(
            lambda v: (
                f"Parzen σ grid {v['sigma']} "
                + ("(extended while the best σ is at an edge, then refined)" if "True" in v["search"] else "(fixed)")
                + f"; chain of {v['samples']} samples in {v['chains']} chain(s), start {v['start']}, burn-in "
                + v["burn_in"]
                + (", Bernoulli draws" if "True" in v["bernoulli"] else ", samples are reconstruction means")
            )
        ),
        Metric(
            "parzen_sample_distance",
            title="Distance from a chain sample to its nearest training row",
            figure="none",
            summary=False,
        ),
        Metric(
            "parzen_test_distance",
            title="Distance from a test row to its nearest training row",
            figure="none",
            summary=False,
        ),
    )

    def evaluate(self, ctx):
        p = self.params
        with torch.no_grad():
            samples = chain_samples(ctx, p).double()
            x = {s: torch.cat([b for b, _ in ctx.batches(s, 1000, p.max_rows)]).double() for s in ("valid", "test")}

            window = parzen_window(samples, x["valid"], p.batch_size)  # distances once, for every σ tried

            def valid_ll(sigma: float) -> float:
                return float(window(sigma).mean())

            found = search_optimum(
                valid_ll,
                p.sigma,
                maximize=True,
                bounds=p.sigma_bounds,
                factor=1.5,
                max_extend=12 if p.search else 0,
                refine=p.refine if p.search else 0,
            )
            test_ll = parzen_log_likelihood(samples, x["test"], found.best, p.batch_size)
            train = ctx.splits["train"].rows(slice(None)).double()
            k = p.distance_rows
            sample_d = mean_nearest_distance(samples[:: max(1, len(samples) // k)][:k], train)
            test_d = mean_nearest_distance(x["test"][:k], train)
        nats = "nats per example"
        return {
            "parzen_ll": xr.DataArray(float(test_ll.mean()), attrs=_attrs("Parzen-window test log-likelihood", nats)),
            "parzen_ll_se": xr.DataArray(
                float(test_ll.std() / math.sqrt(len(test_ll))), attrs=_attrs("standard error of parzen_ll", nats)
            ),
            "parzen_sigma": xr.DataArray(found.best, attrs=_attrs("Parzen width chosen on validation")),
            "parzen_sigma_at_edge": _edge_flag(found, "Parzen width σ"),
            "parzen_valid_ll": xr.DataArray(
                found.scores,
                dims="sigma",
                coords={"sigma": found.values},
                attrs=_attrs("validation log-likelihood per σ tried", nats),
            ),
            "parzen_sample_distance": xr.DataArray(
                sample_d, attrs=_attrs("mean distance from a chain sample to its nearest training row", "pixel units")
            ),
            "parzen_test_distance": xr.DataArray(
                test_d,
                attrs=_attrs(
                    "mean distance from a test row to its nearest training row (the yardstick for "
                    "parzen_sample_distance: samples much closer than this copy training rows)",
                    "pixel units",
                ),
            ),
        }


# -------------------------------------------------------------------------- samples
class SamplesParams(Params):
    chains: int = Field(4, ge=1, description="Chains shown (rows of the figure).")
    steps: int = Field(12, ge=1, description="Consecutive samples per chain.")
    burn_in: int = Field(20, ge=0, description="Steps dropped first.")
    thin: int = Field(1, ge=1, description="Show every thin-th state (the paper's Fig. 2 shows every 4th).")
    start: Literal["noise", "train"] = Field("noise", description="Chain start, as the parzen evaluator's `start`.")


class Samples(Evaluator):
    name = "samples"
    summary = (
        "Consecutive Markov-chain samples (eq. 14–15) with the nearest training image beside them "
        "(Zhou et al. Fig. 2/4)."
    )
    Params = SamplesParams
    reports = (Figure("samples", needs="samples", draw="aebench.plots:sample_grid", title="Markov chain samples"),)

    def evaluate(self, ctx):
        p = self.params
        with torch.no_grad():
            s = markov_chain(ctx, p.chains, p.steps, p.burn_in, p.thin, start=p.start)
            pool = ctx.splits["train"].rows(slice(None))
            nearest = pool[nearest_rows(s[:, -1], pool)]
        out = {
            "samples": _image_dims(ctx, s, ("chain", "step")).assign_attrs(
                _attrs("Markov chain samples (reconstruction means)")
            ),
            "samples_nearest": _image_dims(ctx, nearest, ("chain",)).assign_attrs(
                _attrs("nearest training image to each chain's last sample")
            ),
        }
        if "pixel_y" in out["samples"].dims:  # a figure for the run folder, written by whoever owns it
            import io

            import matplotlib.pyplot as plt

            from aebench.plots import sample_grid

            fig = sample_grid(xr.Dataset(out))
            buf = io.BytesIO()
            fig.savefig(buf, dpi=100, format="png")
            plt.close(fig)
            ctx.files["samples.png"] = buf.getvalue()
        return out


# -------------------------------------------------------------------------- filters
class FiltersParams(Params):
    units: int = Field(100, ge=1, description="First-layer units shown.")


class Filters(Evaluator):
    name = "filters"
    summary = "First-layer weights as images, one per hidden unit (Erhan et al. Fig. 2)."
    Params = FiltersParams
    reports = (Figure("filters", needs="filters", draw="aebench.plots:filter_grid", title="First-layer filters"),)

    def evaluate(self, ctx):
        W = ctx.model.layer_view(0).weight[: self.params.units]
        da = _image_dims(ctx, W, ("unit",)).assign_attrs(_attrs("first-layer filter (encoder weights of a unit)"))
        return {"filters": da.assign_coords(unit=np.arange(da.sizes["unit"]))}


# ----------------------------------------------------------------------- trajectory
class TrajectoryParams(Params):
    probes: int = Field(50, ge=1, description="Fixed test inputs whose outputs are recorded.")
    output: str = Field(
        "auto",
        pattern="^(auto|reconstruction|classes)$",
        description="auto: class probabilities when the run has a softmax head at that epoch, else reconstructions.",
    )


class Trajectory(Evaluator):
    name = "trajectory"
    summary = (
        "The network's outputs on fixed test inputs every epoch, for 2-D embeddings of function space "
        "(Erhan et al. Fig. 5)."
    )
    Params = TrajectoryParams
    reports = (
        Figure(
            "trajectory",
            needs="trajectory_outputs",
            draw="aebench.plots:trajectory_scatter",
            title="Function-space trajectories",
        ),
    )

    def on_epoch(self, ctx, epoch):
        x = ctx.splits["test"].rows(slice(0, self.params.probes))
        code = ctx.model.encode(x)
        mode = self.params.output
        use_classes = mode == "classes" or (mode == "auto" and ctx.head is not None)
        out = torch.softmax(ctx.head(code), 1) if use_classes and ctx.head is not None else ctx.model.decode(code)
        flat = out.reshape(1, -1).cpu().numpy()
        return {
            "trajectory_outputs": xr.DataArray(
                flat[0], dims="output_unit", attrs=_attrs("outputs on the probe inputs, concatenated")
            )
        }


# --------------------------------------------------------------------------- timing
class Timing(Evaluator):
    name = "timing"
    summary = "Training seconds and examples per second of every stage."

    def evaluate(self, ctx):
        records = ctx.records
        stages = list(dict.fromkeys(r.stage for r in records))
        rows = len(ctx.splits["train"])
        secs = [sum(r.seconds for r in records if r.stage == s) for s in stages]
        epochs = [sum(1 for r in records if r.stage == s) for s in stages]
        coords = {"stage_name": stages}
        return {
            "stage_seconds": xr.DataArray(
                secs, dims="stage_name", coords=coords, attrs=_attrs("training time per stage", "s")
            ),
            "stage_examples_per_second": xr.DataArray(
                [e * rows / s if s > 0 else np.nan for e, s in zip(epochs, secs)],
                dims="stage_name",
                coords=coords,
                attrs=_attrs("training throughput per stage", "examples/s"),
            ),
        }


@hookimpl
def aebench_evaluators():
    return [Recon, Svm, Finetune, Parzen, Samples, Filters, Trajectory, Timing]
