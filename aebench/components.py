"""Base classes for the kinds of component a plug-in can provide.

Every component class has a unique ``name`` within its kind, a one-line ``summary`` and
a pydantic ``Params`` model (fields with defaults, bounds and descriptions). The spec,
the CLI and the Workbench all build, print and validate from ``Params``; a component
is instantiated with a validated ``Params`` instance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from aebench.hookspecs import Criterion

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr


class Params(BaseModel):
    """Base of every component's ``Params``: unknown keys, non-finite numbers (inf, nan),
    ``true``/``false`` where a number is expected and integers no machine can hold are
    errors, at the top of a field and at every depth inside it (list items, nested tables)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _leaves(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads `epochs = true` as 1 and `layers = [true]` as [1]; in a spec that is
        # always a typo. A problem inside a list names the item, so the message names the field.
        spec_field = cls.model_fields.get(info.field_name or "")
        takes_bool = spec_field is None or _takes_bool(spec_field.annotation)
        problem = leaf_problem(value, takes_bool, info.field_name or "value")
        if problem:
            raise ValueError(problem)
        return value


#: the largest integer a spec may hold anywhere (an int64: what torch and numpy index with)
INT_MAX = 2**63 - 1


def leaf_problem(value: Any, takes_bool: bool = False, where: str = "value") -> str | None:
    """What is wrong with ``value`` or any item nested in it, or ``None``: a boolean where a
    number or text is expected, a non-finite float, an integer outside int64."""
    if isinstance(value, bool):
        if takes_bool:
            return None
        return f"{where} = {str(value).lower()}: a boolean where a number or text is expected"
    if isinstance(value, int) and not -INT_MAX - 1 <= value <= INT_MAX:
        return f"{where} = {value}: larger than any machine can hold (at most 2^63 - 1)"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} = {value}: numbers must be finite"
    items: Any = ()
    if isinstance(value, list | tuple):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    elif isinstance(value, dict):
        items = ((f"{where}.{k}", v) for k, v in value.items())
    for sub, v in items:
        problem = leaf_problem(v, takes_bool, sub)
        if problem:
            return problem
    return None


def _takes_bool(annotation: Any) -> bool:
    import typing

    if annotation is bool or annotation is Any:
        return True
    return any(_takes_bool(a) for a in typing.get_args(annotation))


LayerList = list[int] | None

#: the data splits, in the order results list them
SPLITS = ("train", "valid", "test")

#: ``json_schema_extra`` key that marks a Params field as free to differ between the members
#: of one batch (``ensemble = true``): a number the engine applies member by member (a noise
#: level, a penalty weight, a learning rate). Every other field must agree for runs to batch.
PER_MEMBER = "per_member"


def per_member(default: Any, **kwargs: Any) -> Any:
    """``Field(default, **kwargs)`` marked :data:`PER_MEMBER`: members of one batch may differ in it."""
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    return Field(default, json_schema_extra={**extra, PER_MEMBER: True}, **kwargs)


def per_member_fields(params: type[BaseModel]) -> set[str]:
    """Names of the fields of ``params`` marked with :func:`per_member`."""
    return {
        name
        for name, f in params.model_fields.items()
        if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get(PER_MEMBER)
    }


class Component:
    """What all component kinds share: ``name``, ``summary``, ``Params``, ``params``."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | None = None) -> None:
        self.params = params if params is not None else self.Params()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


# --------------------------------------------------------------------------- models
@dataclass(frozen=True)
class LayerView:
    """What a regularizer may look at in layer ``index`` (0 = the layer fed by x)."""

    index: int
    weight: torch.Tensor  # encoder weight, shape (out, in)
    bias: torch.Tensor
    activation: str
    decoder_weight: torch.Tensor  # shape (in, out); the encoder's transpose when tied


class Model(torch.nn.Module):
    """A stack of N autoencoder layers; see :func:`aebench.hookspecs.aebench_models`."""

    kind: ClassVar[str] = "model"
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params

    #: layer sizes, input first: ``[n_inputs, h1, ..., hN]``
    sizes: list[int]

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def encode_layer(self, i: int, h: torch.Tensor, noise: Any = None) -> torch.Tensor:
        raise NotImplementedError

    def decode_layer(self, i: int, h: torch.Tensor, activate: bool = True) -> torch.Tensor:
        raise NotImplementedError

    def layer_parameters(self, i: int) -> list[torch.nn.Parameter]:
        raise NotImplementedError

    def layer_view(self, i: int) -> LayerView:
        raise NotImplementedError

    def reconstruction_loss(self, target: torch.Tensor, pre: torch.Tensor, i: int) -> torch.Tensor:
        """Mean over the batch of the loss summed over units, from decoder ``i``'s pre-activation."""
        raise NotImplementedError

    @classmethod
    def batch(cls, models: list["Model"]) -> "Model | None":
        """The S models ``models`` (one per member, same shapes) as one batched model, or
        ``None`` when this model cannot batch (its runs then train one at a time).

        The batched model has this same interface on tensors with a leading member axis:
        ``encode_layer`` maps (S, B, n_in) to (S, B, n_out), ``reconstruction_loss`` returns
        one loss per member, shape (S,); ``layer_parameters(i)`` are (S, ...) tensors. It
        also has ``member_view(s, i)`` (member s's :class:`LayerView`, for regularizers) and
        ``write_back(models)`` (copy each member's weights into its own model).
        """
        return None

    def encode(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Encode through layers ``0 .. upto-1`` (default: the whole stack)."""
        h = x
        for i in range(self.n_layers if upto is None else upto):
            h = self.encode_layer(i, h)
        return h

    def decode(self, h: torch.Tensor, start: int | None = None, activate: bool = True) -> torch.Tensor:
        """Decode from layer ``start-1`` down to the input space (default: the top)."""
        start = self.n_layers if start is None else start
        for i in reversed(range(start)):
            h = self.decode_layer(i, h, activate=activate or i > 0)
        return h


# ------------------------------------------------------------------------ corruptions
class CorruptionParams(Params):
    layers: LayerList = Field(None, description="Layer inputs to corrupt (0 = x); default: every layer input.")


class Corruption(Component):
    """Q(h_c | h); see :func:`aebench.hookspecs.aebench_corruptions`."""

    kind: ClassVar[str] = "corruption"
    Params: ClassVar[type[Params]] = CorruptionParams
    #: ``input``: applied to a layer's input; ``preactivation``: to its pre-activation.
    site: ClassVar[Literal["input", "preactivation"]] = "input"

    def __call__(self, h: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def applies_to(self, i: int, n_layers: int) -> bool:
        layers = self.params.layers  # type: ignore[attr-defined]
        return layers is None or i in layers


# ----------------------------------------------------------------------- regularizers
class RegularizerParams(Params):
    weight: float = per_member(0.1, ge=0, description="λ: the weight of this term in the objective.")
    layers: LayerList = Field(None, description="Layers to regularize (0 = first); default: all.")


class Regularizer(Component):
    """λ^i R^i; see :func:`aebench.hookspecs.aebench_regularizers`."""

    kind: ClassVar[str] = "regularizer"
    Params: ClassVar[type[Params]] = RegularizerParams

    def penalty(self, layer: LayerView, h_in: torch.Tensor, h_out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def applies_to(self, i: int) -> bool:
        layers = self.params.layers  # type: ignore[attr-defined]
        return layers is None or i in layers


# -------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class Stage:
    """One phase of training.

    ``target`` names one of the engine's targets (the one table of them is
    ``aebench.engine.stage.TARGETS``, which also declares what each monitors): ``input``
    (reconstruct x through the layers ``0..depth-1``; monitors the validation
    ``recon_error``), ``local`` (layer ``depth-1`` reconstructs its own clean input, eq. 12;
    monitors nothing), ``labels`` (softmax on the top code, supervised; monitors the
    validation ``class_error``), ``hybrid`` (labels + ``alpha`` × input reconstruction;
    ``class_error``) or ``custom``: ``objective`` supplies the batch loss (e.g. contrastive
    divergence), an :class:`Objective` (which declares its own criterion), or a plain
    function ``(ctx, stage, x, y) -> scalar`` for one run at a time (no criterion); the
    engine still freezes, optimizes and records as usual. ``patience``: early stopping on
    the target's criterion (the built-in ``early-stopping`` callback); a stage that sets it
    on a target without a criterion fails its run with that reason.
    ``corrupt``: ``all`` layer inputs in use, only the ``trained`` ones, or ``none``.
    """

    label: str
    train_layers: tuple[int, ...]
    depth: int
    target: str
    epochs: int
    corrupt: Literal["all", "trained", "none"] = "all"
    regularize: bool = True
    lr: float | None = None
    alpha: float = 1.0
    patience: int | None = None
    train_head: bool = False
    reinit: bool = False  # restore the run's initial weights first (a from-scratch baseline)
    objective: Any = None  # with target = "custom": an Objective (or a per-run function)
    options: dict[str, Any] = field(default_factory=dict)  # plug-in data for ``objective``


class Objective:
    """The batch loss of a ``custom`` stage, for every member of a batch at once.

    ``__call__(batch, x, y)`` gets the stage's :class:`aebench.context.StageBatch`:
    ``batch.net`` (the model, or with S > 1 members its batched form: see
    :meth:`Model.batch`), ``batch.stages[s]`` (member s's own Stage: ``lr``, ``alpha``,
    ``options``), ``batch.stage`` (member 0's), ``batch.contexts`` and
    ``batch.each(h, fn)``, which applies ``fn(s, h_s, generator_s)`` member by member with
    each member's own generator (draw every random number through it, so that a member
    equals its solo run). ``x`` is the clean batch, (B, n) for one member and (S, B, n) for
    S; ``y`` the labels, (B,) or (S, B). Return one loss per member, shape (S,).

    ``batchable = False`` says that it handles one member only: its runs then train one at a
    time (with a note). A plain function ``fn(ctx, stage, x, y) -> scalar`` is read that way.

    What the Trainer's callbacks read from it (declared here, as the built-in targets declare
    theirs): ``criterion``, the validation measure early stopping watches (a
    :class:`~aebench.hookspecs.Criterion` naming a per-epoch value: one an evaluator's
    ``on_epoch`` records, or one this objective's own :meth:`on_epoch` returns), or ``None``:
    it has none, and a stage of it with ``patience`` fails its run saying so. ``blowup``:
    whether a mean epoch loss far above the stage's first batch means divergence (true for
    a loss bounded below, such as a reconstruction; false for a quantity that is no loss to
    compare with its start, such as contrastive divergence's). A non-finite loss or weight is
    a divergence either way.
    """

    batchable: ClassVar[bool] = True
    criterion: ClassVar[Criterion | None] = None
    blowup: ClassVar[bool] = False

    def __call__(self, batch: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def on_epoch(self, ctx: Any, stage: Stage) -> dict[str, xr.DataArray] | None:
        """Per-epoch values of one member (recorded like an evaluator's ``on_epoch``; the
        model holds the member's weights, in eval mode, without gradient): where an objective
        computes its own ``criterion``, e.g. a validation score with ``dims=("split",)``."""
        return None


def objective_batches(objective: Any) -> bool:
    """Whether a custom stage's ``objective`` can train S > 1 members at once."""
    return isinstance(objective, Objective) and objective.batchable


#: the most epochs one stage may ask for: far past any protocol (the papers train for at most
#: 1,000), near enough that a typo of a few digits is refused instead of running for years
MAX_EPOCHS = 100_000


class ScheduleParams(Params):
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS, description="Epochs (per layer for layer-wise schedules).")
    lr: float | None = per_member(None, gt=0, description="Learning rate; default: the optimizer's.")


class Schedule(Component):
    """A sequence of stages; see :func:`aebench.hookspecs.aebench_schedules`."""

    kind: ClassVar[str] = "schedule"
    Params: ClassVar[type[Params]] = ScheduleParams
    #: True for a schedule that may return no stages (one link of a chain switched off); a run
    #: whose whole chain has no stage is still a spec error
    may_be_empty: ClassVar[bool] = False

    def stages(self, n_layers: int) -> list[Stage]:
        raise NotImplementedError


# ---------------------------------------------------------------------------- datasets
@dataclass
class Split:
    x: np.ndarray  # (rows, features), uint8 or float32 as stored
    y: np.ndarray  # (rows,), int64


@dataclass
class DataSplits:
    name: str
    train: Split
    valid: Split
    test: Split
    scale: float = 1.0  # stored value * scale = model input
    shape: tuple[int, ...] = ()
    n_classes: int = 0
    checksums: dict[str, str] = field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        return int(self.train.x.shape[1])

    def split(self, name: str) -> Split:
        return {"train": self.train, "valid": self.valid, "test": self.test}[name]


class DatasetParams(Params):
    subset: int | None = Field(
        None, ge=1, description="Use only the first N training rows (valid/test: N/5 each, at most the split)."
    )


class Dataset(Component):
    """A data set; see :func:`aebench.hookspecs.aebench_datasets`."""

    kind: ClassVar[str] = "dataset"
    Params: ClassVar[type[Params]] = DatasetParams

    def load(self) -> DataSplits:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """What ``aebench data list`` shows: ``sizes`` (train, valid, test), ``cached``, ``checksum``."""
        return {"sizes": None, "cached": "n/a", "checksum": ""}

    def provenance(self) -> str:
        """What a report should say about where these rows come from when they are not the
        published files (e.g. "regenerated by aebench's recipes, not the original files");
        "" for the original data. Reports group the data sets that give the same text."""
        return ""


# -------------------------------------------------------------------------- evaluators
class Evaluator(Component):
    """A measurement; see :func:`aebench.hookspecs.aebench_evaluators`.

    ``ctx`` is the run's :class:`aebench.context.RunContext` (typed ``Any`` here: that module
    is built from these classes, and components import nothing of it)."""

    kind: ClassVar[str] = "evaluator"
    #: how its results are reported: :class:`~aebench.hookspecs.Metric`, ``Criterion``,
    #: ``Figure`` and ``Note`` declarations, documented once, in
    #: :func:`aebench.hookspecs.aebench_evaluators`; anything else in it marks the plug-in broken
    reports: ClassVar[tuple[Any, ...]] = ()

    def on_epoch(self, ctx: Any, epoch: int) -> dict[str, xr.DataArray] | None:
        return None

    def evaluate(self, ctx: Any) -> dict[str, xr.DataArray]:
        return {}


# -------------------------------------------------------------------------- optimizers
class OptimizerParams(Params):
    """What every optimizer takes: the learning rate (a stage may override it) and the
    mini-batch size (the spec's ``optimizer`` table has always held both)."""

    lr: float = per_member(0.01, gt=0, description="Learning rate.")
    batch_size: int = Field(100, ge=1, description="Examples per mini-batch.")


class Optimizer(Component):
    """An update rule; see :func:`aebench.hookspecs.aebench_optimizers`."""

    kind: ClassVar[str] = "optimizer"
    Params: ClassVar[type[Params]] = OptimizerParams
    #: whether its update acts element by element, so that one optimizer over the members'
    #: stacked (S, ...) parameters steps each as its solo run (False: its runs train one at a time)
    batchable: ClassVar[bool] = True

    def build(self, params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        """A ``torch.optim.Optimizer`` over ``params`` at learning rate ``lr``."""
        raise NotImplementedError


# --------------------------------------------------------------------------- executors
class ExecutorParams(Params):
    """Base of an executor's options. Each field is also a flag of ``aebench run``
    (``workers`` -> ``--workers``), shared by the executors that declare a field of that name."""


class Executor(Component):
    """Where the tasks of a sweep train; see :func:`aebench.hookspecs.aebench_executors`.

    Built as ``cls(params, job)``: ``job`` (an ``aebench.execution.Job``, typed ``Any`` here)
    holds everything it needs (the spec, the device, the output lock, the stop event, and the
    means to start, train and record tasks); nothing is set on it afterwards."""

    kind: ClassVar[str] = "executor"
    Params: ClassVar[type[Params]] = ExecutorParams

    def __init__(self, params: Params | None = None, job: Any = None) -> None:
        super().__init__(params)
        self.job = job

    @classmethod
    def unavailable(cls, params: Params) -> str | None:
        """Why this executor cannot run here (a missing library, a bad option), or None. Asked
        before anything is written, so that the user's error leaves the output folder alone."""
        return None

    def map(self, tasks: list[Any]) -> None:
        """Train every task and record every result (see the hookspec)."""
        raise NotImplementedError

    def start(self) -> None:
        """Reach what it runs on and check it (a cluster's pre-flight): called before ``--out`` is touched,
        so a refusal there writes nothing. The default does nothing."""

    def close(self) -> None:
        """Let go of what :meth:`start` reached (also after an error or Ctrl-C). The default does nothing."""

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------- callbacks
class CallbackParams(Params):
    pass


class Callback(Component):
    """Follows (and may steer) one run's training; see :func:`aebench.hookspecs.aebench_callbacks`.

    A spec chooses callbacks (``callbacks = [{ name = "...", ... }]``); each run — each member
    of an ensemble — gets its own instance. ``default = True`` puts it in every run with its
    default Params unless the spec lists it (the Trainer's own control: early stopping, the
    divergence check, checkpoints). ``run`` is the run's :class:`aebench.context.RunContext`
    (typed ``Any`` here: that module is built from these classes)."""

    kind: ClassVar[str] = "callback"
    Params: ClassVar[type[Params]] = CallbackParams
    default: ClassVar[bool] = False

    def on_run_start(self, run: Any) -> None:
        """Before the first epoch (after :meth:`load_state_dict` when the run resumes)."""

    def on_stage_start(self, run: Any, stage: Stage) -> None:
        """Before a stage's first epoch (not again when a run resumes inside the stage)."""

    def on_train_epoch_end(self, run: Any, epoch: int, loss: float) -> None:
        """After an epoch's training pass, before anything evaluates it (``loss``: its mean)."""

    def on_epoch_end(self, run: Any, epoch: int, metrics: dict[str, Any]) -> None:
        """After an epoch is evaluated and recorded: ``metrics`` as the ``aebench_on_epoch_end`` hook gets them."""

    def on_stage_end(self, run: Any, stage: Stage) -> None:
        """After a stage's last epoch (or its early stop)."""

    def on_run_end(self, run: Any, result: Any) -> None:
        """After the run is evaluated, with its per-run ``xarray.Dataset`` (``None`` if it failed)."""

    def state_dict(self) -> dict[str, Any]:
        """What the callback must remember across ``--resume``, saved in every checkpoint:
        dicts, lists, text, numbers, booleans, ``None`` and tensors only (checkpoints load with
        ``weights_only=True``)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned, when a run resumes from its checkpoint."""


BASES: dict[str, type] = {
    "model": Model,
    "corruption": Corruption,
    "regularizer": Regularizer,
    "schedule": Schedule,
    "dataset": Dataset,
    "evaluator": Evaluator,
    "optimizer": Optimizer,
    "executor": Executor,
    "callback": Callback,
}
