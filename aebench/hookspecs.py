"""The hooks a plug-in implements.

A plug-in is a module registered under the ``aebench`` entry-point group::

    [project.entry-points.aebench]
    my_plugin = "my_package.aebench_plugin"

and decorates functions with :data:`aebench.hookimpl`. Each *component* hook returns a
list of component classes (see :mod:`aebench.components` for the base class of each
kind); each *callback* hook (``aebench_on_run_start``, ``aebench_on_epoch_end``,
``aebench_on_run_end``) is called during every run of every spec — an always-on plug-in —
while a :class:`aebench.components.Callback` (``aebench_callbacks``) is chosen and
configured per spec and may keep state across ``--resume``. A plug-in implements only the
hooks it needs. aebench's own built-ins (``aebench/builtin/``) use these same hooks.

Callback hooks are called through pluggy's own caller, so ``@hookimpl(wrapper=True)``,
old-style ``hookwrapper=True``, ``tryfirst``/``trylast`` and historic hooks
(:func:`aebench_registry_ready`) behave as pluggy documents. One plug-in's exception never
stops the others nor fails the run: it is a warning and a line in the run's
``hook_errors`` (``status.json``) naming the plug-in (a wrapper that raises passes the
call through). Register in-process plug-ins with :func:`aebench.plugins.register_plugin`
(or :meth:`aebench.plugins.Registry.add_plugin`) so that they get these guards.

A component class that is an example rather than a tool (a template to copy, a demo) sets
the class attribute ``example = True``: it stays usable by name in specs and is listed by
``aebench plugins`` (``"example": true`` in ``--json``), but pickers that offer components
(the Workbench's) hide it unless asked (``Workbench(examples=True)``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

PROJECT = "aebench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: kind name -> component hook; a new kind needs one hookspec and one line here.
KIND_HOOKS: dict[str, str] = {
    "model": "aebench_models",
    "corruption": "aebench_corruptions",
    "regularizer": "aebench_regularizers",
    "schedule": "aebench_schedules",
    "dataset": "aebench_datasets",
    "evaluator": "aebench_evaluators",
    "optimizer": "aebench_optimizers",
    "executor": "aebench_executors",
    "callback": "aebench_callbacks",
}


@hookspec
def aebench_models() -> list[type]:
    """Return autoencoder model classes (subclasses of :class:`aebench.components.Model`).

    A model is a ``torch.nn.Module`` holding a stack of N layers. It is built as
    ``cls(params, n_inputs, generator)`` where ``params`` is an instance of the class's
    ``Params`` (validated from the spec's ``model`` table), ``n_inputs`` the data
    dimension and ``generator`` the run's ``torch.Generator`` (use it for every random
    initialisation so that runs are reproducible).

    It must provide ``n_layers``, ``encode_layer(i, h, noise=None)``,
    ``decode_layer(i, h)``, ``layer_parameters(i)`` (the parameters that belong to layer
    ``i``: with tied weights the decoder uses the encoder's weight, so it is listed once),
    ``layer_view(i)`` (for regularizers) and ``reconstruction_loss(target, pre, i)``.
    ``encode(x, upto)`` and ``decode(h, start)`` are inherited.

    To train S members (seeds, noise levels, learning rates) as one batch
    (``ensemble = true``), the class method ``batch(models)`` returns the members as one
    model with the same methods on (S, B, n) tensors, one loss per member (S,), plus
    ``member_view(s, i)`` and ``write_back(models)``; ``aebench.testing.check_model``
    checks it against the members. The default returns ``None``: the model's runs then
    train one at a time. A subclass of :class:`aebench.models.Stacked` that adds no
    parameters batches as it is.
    """


@hookspec
def aebench_corruptions() -> list[type]:
    """Return corruption classes (subclasses of :class:`aebench.components.Corruption`).

    A corruption is the process Q(h_c | h) of Zhou et al. eq. 8. It is built as
    ``cls(params)`` and called as ``corruption(h, generator) -> h_c`` on a batch
    (batch-first tensor). Draw every random number from ``generator`` (the run's), never
    from the global RNG. ``site = "input"`` corruptions act on layer inputs (0 = x);
    ``site = "preactivation"`` ones act on a layer's pre-activation (code noise).
    The engine applies it only while training, on the layers named by
    ``params.layers`` (default: every layer). A Params field declared with
    :func:`aebench.components.per_member` (a noise level) may differ between the members
    of one batch; runs that differ in any other field train apart. The same holds for
    every kind's Params.
    """


@hookspec
def aebench_regularizers() -> list[type]:
    """Return regularizer classes (subclasses of :class:`aebench.components.Regularizer`).

    A regularizer is a per-layer term λ^i R^i of eq. 8. It is built as ``cls(params)``
    and called as ``penalty(layer, h_in, h_out) -> scalar tensor`` where ``layer`` is a
    :class:`aebench.components.LayerView` (index, encoder weight, bias, activation) and
    ``h_in``/``h_out`` the layer's (corrupted) input and its output on the batch. The
    engine multiplies by ``params.weight`` (λ) and adds it for every layer in
    ``params.layers`` (default: all) that is trained in the current stage.
    """


@hookspec
def aebench_schedules() -> list[type]:
    """Return schedule classes (subclasses of :class:`aebench.components.Schedule`).

    A schedule turns its ``Params`` into a list of :class:`aebench.components.Stage`:
    which layers train, which loss (``input`` through the whole stack, ``local``
    reconstruction of the layer's own input, ``labels``, ``hybrid``, or ``custom`` with
    an :class:`aebench.components.Objective` of your own), whether corruption and
    regularizers are on, epochs, and an optional learning rate. It is
    built as ``cls(params)`` and asked ``stages(n_layers) -> list[Stage]``. Schedules
    chain: a spec's ``schedule`` may be a list, whose stages run one after another.
    A schedule that may return no stage (one link of a chain switched off by a sweep, as
    the built-in ``none``) sets the class attribute ``may_be_empty = True``; a run whose
    whole chain has no stage is refused before anything starts.
    """


@hookspec
def aebench_datasets() -> list[type]:
    """Return data-set classes (subclasses of :class:`aebench.components.Dataset`).

    A data set is built as ``cls(params)`` and asked ``load() -> DataSplits``: the
    ``train``/``valid``/``test`` splits as uint8 (or float32) arrays of shape
    (rows, features) with integer labels, a ``scale`` that maps the stored values to the
    model's input range, the image ``shape`` for figures and the ``checksums`` of the
    files it read. Raise :class:`aebench.DataError` naming the file for bad data.
    ``provenance()`` returns what a report must say when the rows are not the published
    files (the built-in variation sets: "regenerated by aebench's recipes, not the original
    files"); the default "" says nothing. ``info()`` feeds ``aebench data list``.
    """


@hookspec
def aebench_evaluators() -> list[type]:
    """Return evaluator classes (subclasses of :class:`aebench.components.Evaluator`).

    An evaluator is built as ``cls(params)``. ``on_epoch(ctx, epoch)`` may return a dict
    of per-epoch values (``name -> {dims..., value}`` as small ``xarray.DataArray``)
    recorded along the ``epoch`` dimension; ``evaluate(ctx)`` runs once at the end and
    returns a dict of ``xarray.DataArray`` (each with ``long_name`` and ``units``
    attributes). ``ctx`` is the :class:`aebench.context.RunContext` (model, data, device,
    generator).

    **How its results are reported.** An evaluator class may declare, in a class attribute
    ``reports``, how ``aebench report``, the tables of :mod:`aebench.tables` and the end of
    ``aebench run`` show what it writes: a tuple of :class:`Metric`, :class:`Criterion`,
    :class:`Figure` and :class:`Note` declarations (all in this module). aebench knows
    nothing else about any evaluator, its own included: ``aebench/builtin/evaluators.py``
    declares the built-ins' the same way, and the template plug-in shows a small case::

        from aebench.hookspecs import Criterion, Estimate, Figure, Metric, Note

        class CodeStats(Evaluator):
            name = "code-stats"
            reports = (
                Metric(
                    "code_saturated",                  # the result variable (a scalar per run)
                    title="Saturated top-layer units",  # the table's and the figure's title
                    units="%", scale=100,              # shown × scale, in these units
                    interval="code_saturated_ci",      # one run's own interval (optional) ...
                    interval_factor=1.0,               # ... times this is a 95 % half-width ...
                    interval_words="95 % binomial interval over the test rows",  # ... and what it covers
                    criterion=Criterion("code_valid_saturated", words="validation saturation"),
                ),
                Figure("code_histogram", needs="code_hist", draw="my_package.figures:code_histogram"),
                Note(lambda values: f"saturation threshold {values['threshold']}"),
            )

    The fields, in short: ``Metric(var, title, units, scale=1, higher_is_better=False,
    interval=None, interval_factor=1, interval_words="", criterion=None, figure="bars",
    summary=True, source=None, where={}, estimates=(), spread="t", reference=None,
    reference_words="")``; ``Criterion(var, name=var,
    words, higher_is_better=False, split="valid", best_over=(), default=False)``;
    ``Estimate(var, at_edge, what)``; ``Figure(name, needs, draw, title="")``;
    ``Note(describe)``.

    - :class:`Metric` gets a table in the report (one row per data set, one column per
      sweep point, "mean ± interval" cells, with the interval said in words beside it),
      a figure (``figure="bars"``: bars with the same intervals, or ``"none"``), and a
      column in the summary that ``aebench run`` prints (``summary=False``: not there).
      Over several seeds the ± is the t-interval of the seed mean; with one seed it is
      the metric's own ``interval`` (× ``interval_factor``), described by
      ``interval_words``. ``spread="range"`` reports the median and the range (min–max)
      over seeds instead, for durations and other positive, skewed quantities whose
      t-interval would reach below zero (the core's ``train_seconds``).
      ``higher_is_better`` says which way is better. ``units`` are
      the units shown after ``scale`` (empty: the variable's own ``units`` attribute).
      ``criterion`` is the validation measure that chooses hyper-parameters for this
      metric (a ``[[report]]`` table's default ``by``). A metric read from another
      variable at given coordinates (``source="recon_error_final", where={"split":
      "test"}``) is derived by the report. ``estimates`` name the quantities the
      evaluator chose on validation inside each run (:class:`Estimate`: SVM C, Parzen σ)
      and their at-the-edge flags, which the report lists run by run. ``reference`` names
      a variable holding the same measure without what the run learned (the SVM on raw
      pixels beside the SVM on features): every table of the metric gets it as a column
      titled ``reference_words``, from the same split.
    - :class:`Criterion` declares a validation measure by name (what ``by`` may say):
      the variable, the split it is read on, the axes it takes the best over, which way
      is better and its name in words. ``default=True`` marks the measure used where a
      metric declares none (the built-in ``recon`` evaluator's validation reconstruction).
    - :class:`Figure` draws a figure of its own (curves, filters, samples) whenever the
      results hold ``needs`` with a finite value: ``draw`` is ``callable(ds) -> Figure``
      or a ``"module:function"`` path imported only when the report is written.
    - :class:`Note` describes the evaluator's protocol choices (grids, budgets, chain
      settings) from the values its Params took, for the "left open by the paper, chosen
      here" note of each ``[[report]]`` table.

    Variables named by a declaration as an interval or an estimate get no table of their
    own; any other scalar result without a :class:`Metric` still gets a plain table,
    titled by its ``long_name``. Two evaluators declaring one variable or criterion name:
    the first in registry order wins. The declarations are checked when they are made and
    again when the plug-in loads: a wrong field type, a name (``var``, ``needs``, ``name``)
    over 100 characters or a text (``title``, ``units``, ``words``) over 500 is an error,
    so the plug-in is listed as broken; so is anything in ``reports`` that is not a
    declaration (``reports`` is declared, empty, on the ``Evaluator`` base). The evaluator's
    results themselves are named as a netCDF file can hold
    them: a letter, then letters, digits or ``_`` (``λ_err`` is fine, ``a/b`` is not), at
    most 100 characters, and not ``status``, ``reason`` or ``train_seconds``; a run whose
    evaluator returns another name fails with a message naming the evaluator. A
    ``Figure``'s draw that raises or returns no matplotlib Figure, and a ``Note`` that
    raises, are named in the report in their place (a note is cut at 1,000 characters).
    """


@hookspec
def aebench_optimizers() -> list[type]:
    """Return optimizer classes (subclasses of :class:`aebench.components.Optimizer`).

    The spec's ``optimizer`` table names one (``optimizer = { name = "adamw", lr = 0.001,
    weight_decay = 0.01, batch_size = 100 }``; ``optimizer = "adam"`` for its defaults). Its
    ``Params`` derive from :class:`aebench.components.OptimizerParams`, which holds ``lr``
    (a stage's own ``lr`` overrides it) and ``batch_size``. It is built as ``cls(params)``
    and asked ``build(parameters, lr) -> torch.optim.Optimizer`` once per stage, for the
    parameters that stage trains; the engine calls ``zero_grad``, ``step``, ``state_dict``
    and ``load_state_dict`` (the state is saved in every checkpoint and restored by
    ``--resume``), so any ``torch.optim.Optimizer`` fits.

    **Members of one batch** (``ensemble = true``) train as one model whose parameters have
    a leading member axis (S, ...). Update rules that act element by element (SGD, RMSprop,
    Adam and their kin) then treat each member exactly as its solo run; a rule that does not
    (one that takes norms over a whole tensor, such as LARS) sets the class attribute
    ``batchable = False`` and its runs train one at a time. Members that differ
    only in ``lr`` share one optimizer built at ``lr = 1``, whose step is scaled member by
    member; that is exact for any rule whose update is ``lr`` times something that does not
    depend on ``lr`` (all the built-ins). A rule for which that is not so (one that mixes
    ``lr`` into its state, or norms over a whole tensor such as LARS) declares ``lr`` again
    in its ``Params`` without :func:`aebench.components.per_member`: runs that differ in it
    then train apart. ``aebench.testing.check_optimizer`` checks both.
    """


@hookspec
def aebench_executors() -> list[type]:
    """Return executor classes (subclasses of :class:`aebench.components.Executor`).

    An executor decides where the tasks of a sweep train (``aebench run --executor NAME``,
    ``aebench.run(spec, out, executor="NAME")`` or ``executor={"name": "NAME", **options}``).
    Its ``Params`` (derived from :class:`aebench.components.ExecutorParams`) are its options;
    each field is also a flag of ``aebench run`` (``workers`` -> ``--workers``, its
    description the help text), shared by the executors that declare a field of that name.
    ``unavailable(params)`` (a class method) says why it cannot run here (a missing library),
    or None; it is asked before anything is written.

    It is built as ``cls(params, job)`` with everything it needs (once, before the output
    folder is opened; the lock it holds is taken before ``map``); ``job``
    (:class:`aebench.execution.Job`) gives ``spec``, ``device``, ``stop`` (a
    ``threading.Event`` or None: the Workbench's Stop) and ``lock.add_workers(pids)`` (record
    worker processes, so a resumed run waits for a killed run's workers). Then
    ``map(tasks)`` must, for every task (a picklable ``Task``: one run, or an ensemble's
    runs):

    1. ``task = job.start(task)`` on the client: marks its runs ``running``;
    2. train it where it likes with ``job.train`` (a picklable function:
       ``job.train(task) -> list[RunResult]``; in this process use ``job.train_here(task)``,
       which shows progress and honours Stop);
    3. ``job.record(task, results)`` on the client, which writes the run folders, or
       ``job.fail(run, reason)`` for each run of a task whose worker died.

    Workers need no access to the output folder: results travel back. Resumable
    checkpoints go where ``task.checkpoints`` says (``job.start`` sets it). Ctrl-C and
    SIGTERM arrive as ``KeyboardInterrupt`` in ``map``: cancel what is queued and let it
    propagate (the runs are marked ``interrupted``).

    ``start()`` and ``close()`` (no-ops by default) bracket its use: ``aebench.run`` enters the
    executor as a context manager before ``--out`` is touched, so a cluster can be reached and
    its workers checked first (a refusal there writes nothing), and ``close`` lets it go.
    """


@hookspec
def aebench_callbacks() -> list[type]:
    """Return callback classes (subclasses of :class:`aebench.components.Callback`).

    A callback follows — and may steer — the training of one run. A spec chooses and
    configures them: ``callbacks = [{ name = "tensorboard", logdir = "tb" }]``, each table
    validated against the class's ``Params``; ``aebench plugins`` lists them. Each run, and
    each member of an ensemble, gets its own instance, built as ``cls(params)``, and the
    Trainer calls, in the spec's order (the defaults first)::

        on_run_start(run)                      # after load_state_dict when resuming
        on_stage_start(run, stage)             # not again when resuming inside the stage
        on_train_epoch_end(run, epoch, loss)   # after the training pass, before evaluation
        on_epoch_end(run, epoch, metrics)      # after the epoch is evaluated and recorded
        on_stage_end(run, stage)
        on_run_end(run, result)                # the per-run xarray.Dataset, or None if it failed

    ``metrics`` is what :func:`aebench_on_epoch_end` gets (``loss``, ``stage``, ``steps``,
    ``name/split`` for every per-split value such as ``recon_error/valid``, ``name`` for a
    scalar). ``run`` (the :class:`aebench.context.RunContext`) also steers the Trainer:
    ``run.stage`` (the current :class:`~aebench.components.Stage`), ``run.criterion`` (the
    :class:`Criterion` the stage's target declares, or ``None``), ``run.start_loss`` (the
    stage's first batch loss, ``None`` where the target says its loss is no yardstick),
    ``run.stop_stage(reason)`` (end this stage for this run: early stopping),
    ``run.request_stop(reason)`` (end the run; recorded as done with the reason),
    ``run.fail(reason)`` (the run is ``failed``: divergence), ``run.weights()`` /
    ``run.load_weights(w)`` (a copy of the run's trained tensors, and back) and
    ``run.request_checkpoint()`` (write the resumable checkpoint after this epoch).

    **State.** ``state_dict()`` returns what the callback must remember (a logger's run id
    and step, a custom stopping rule's best value): plain data and tensors only. It is saved
    in every checkpoint, per member, and given back through ``load_state_dict(state)`` when
    ``aebench run --resume`` (or the Workbench's Resume) continues the run — also after a
    ``kill -9``. A state that is not plain data is dropped with a ``hook_errors`` line.

    **Defaults.** A class with ``default = True`` is in every run with its default Params
    unless the spec lists it: the built-in ``early-stopping`` (each stage's ``patience`` on
    its target's criterion), ``divergence`` (a non-finite loss or weight, or a loss
    ``factor`` times the stage's start, fails the run) and ``checkpoint`` (every ``every``
    epochs) are callbacks like any other. A callback's exception is reported like a hook's
    (``hook_errors``, naming the callback) and never fails the run; to fail it on purpose,
    call ``run.fail``. An evaluator's private training (:func:`aebench.training.train`) gets
    the default callbacks only.
    """


@hookspec
def aebench_on_run_start(run: Any) -> None:
    """Called once before a run trains. ``run`` is the RunContext (spec, model, data)."""


@hookspec
def aebench_on_epoch_end(run: Any, epoch: int, metrics: dict[str, float]) -> None:
    """Called after every epoch with the scalar metrics of that epoch.

    ``metrics`` holds ``loss``, ``stage`` and ``steps`` plus whatever the evaluators and the
    stage's target recorded: ``name/split`` for a per-split value (``recon_error/valid``,
    ``class_error/test``), ``name`` for a scalar. Call ``run.request_stop("reason")`` to end
    the run early; the run is then recorded as done with the reason. (To stop on a rule of
    your own per spec, with state across ``--resume``, write a callback instead:
    :func:`aebench_callbacks`.)
    """


@hookspec
def aebench_on_run_end(run: Any, result: Any) -> None:
    """Called once after a run, with its per-run ``xarray.Dataset`` (or ``None`` if it failed)."""


@hookspec(historic=True)
def aebench_registry_ready(registry: Any) -> None:
    """Called once the registry (:class:`aebench.plugins.Registry`) is built, with it.

    Historic: a plug-in added later to the same registry (``registry.add_plugin(obj)``) is
    called at once with it too. A place to check for a companion plug-in or to warn about a
    setting before anything runs; raising is reported as a warning, never fatal.
    """


# ------------------------------------------------------------------ report metadata
# What an evaluator declares about its results (``Evaluator.reports``, documented in
# :func:`aebench_evaluators`): the report, the tables and the CLI read only these.


#: fields that must name something (the others may be empty text)
_NAMES = ("var", "needs", "at_edge", "what", "name")


#: the longest name (``var``, ``needs``, ...) and text (``title``, ``words``, ...) a declaration may hold:
#: a report heading, a table column and a terminal line carry them (a 2-MB title would swamp them all)
NAME_LIMIT, TEXT_LIMIT = 100, 500


def _need_text(owner: str, **fields: Any) -> None:
    for key, value in fields.items():
        empty_ok = key not in _NAMES or (owner == "Criterion" and key == "name")  # a criterion's name defaults
        if not isinstance(value, str) or (not value and not empty_ok):
            raise TypeError(f"{owner}.{key} must be {'a' if empty_ok else 'a non-empty'} string, got {value!r:.80}")
        limit = NAME_LIMIT if key in _NAMES else TEXT_LIMIT
        if len(value) > limit:
            raise TypeError(f"{owner}.{key} must be at most {limit} characters, got {len(value):,}: {value[:40]!r}...")


@dataclass(frozen=True)
class Criterion:
    """A validation measure that chooses hyper-parameters: what a ``[[report]]`` table's ``by`` names.

    ``var`` is read on ``split`` (when it has that axis) and reduced to its best value over
    ``best_over`` (e.g. ``("C",)``: the best C of each run); ``name`` is what ``by`` says
    (default: ``var``); ``words`` the rule in words for the report's notes.
    """

    var: str
    name: str = ""
    words: str = ""
    higher_is_better: bool = False
    split: str | None = "valid"
    best_over: tuple[str, ...] = ()
    default: bool = False

    def __post_init__(self) -> None:
        _need_text("Criterion", var=self.var, name=self.name, words=self.words)
        object.__setattr__(self, "best_over", tuple(self.best_over))
        object.__setattr__(self, "name", self.name or self.var)


@dataclass(frozen=True)
class Estimate:
    """A quantity the evaluator chose on validation inside each run (``var``, e.g. ``svm_C``),
    with its flag ``at_edge`` (1 where it is the smallest or largest value tried) and its name ``what``."""

    var: str
    at_edge: str
    what: str

    def __post_init__(self) -> None:
        _need_text("Estimate", var=self.var, at_edge=self.at_edge, what=self.what)


@dataclass(frozen=True)
class Metric:
    """How one scalar result variable is reported (see :func:`aebench_evaluators`)."""

    var: str
    title: str = ""
    units: str = ""
    scale: float = 1.0
    higher_is_better: bool = False
    interval: str | None = None
    interval_factor: float = 1.0
    interval_words: str = ""
    criterion: Criterion | None = None
    figure: Literal["bars", "none"] = "bars"
    summary: bool = True
    source: str | None = None
    where: Mapping[str, Any] = field(default_factory=dict)
    estimates: tuple[Estimate, ...] = ()
    reference: str | None = None
    reference_words: str = ""
    #: over several seeds: "t" (mean ± t-interval) or "range" (median and min–max: durations)
    spread: Literal["t", "range"] = "t"

    def __post_init__(self) -> None:
        if self.spread not in ("t", "range"):
            raise TypeError(f"Metric.spread must be 't' or 'range', got {self.spread!r}")
        _need_text("Metric", var=self.var, title=self.title, units=self.units, interval_words=self.interval_words)
        if self.interval is not None:
            _need_text("Metric", interval=self.interval)
        if self.reference is not None:
            _need_text("Metric", reference=self.reference, reference_words=self.reference_words)
        for key in ("scale", "interval_factor"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise TypeError(f"Metric.{key} must be a positive number, got {value!r}")
        if self.figure not in ("bars", "none"):
            raise TypeError(f"Metric.figure must be 'bars' or 'none', got {self.figure!r}")
        if self.criterion is not None and not isinstance(self.criterion, Criterion):
            raise TypeError(f"Metric.criterion must be a Criterion, got {self.criterion!r}")
        if (self.source is None) != (not self.where):
            raise TypeError("Metric.source and Metric.where go together (a metric read from another variable)")
        object.__setattr__(self, "estimates", tuple(self.estimates))
        if not all(isinstance(e, Estimate) for e in self.estimates):
            raise TypeError(f"Metric.estimates must be Estimate declarations, got {self.estimates!r}")
        object.__setattr__(self, "title", self.title or self.var)


@dataclass(frozen=True)
class Figure:
    """A figure of the evaluator's own: drawn when the results hold ``needs`` with a finite value.

    ``draw`` is ``callable(ds) -> matplotlib Figure`` or ``"module:function"`` (imported when
    the report is written, so declaring it costs no import).
    """

    name: str
    needs: str
    draw: Callable[[Any], Any] | str
    title: str = ""

    def __post_init__(self) -> None:
        _need_text("Figure", name=self.name, needs=self.needs, title=self.title)
        if not (callable(self.draw) or (isinstance(self.draw, str) and ":" in self.draw)):
            raise TypeError(f"Figure.draw must be a callable or 'module:function', got {self.draw!r}")

    def function(self) -> Callable[[Any], Any]:
        if callable(self.draw):
            return self.draw
        import importlib

        module, _, name = self.draw.partition(":")
        return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Note:
    """A protocol choice of the evaluator that a paper may leave open, in words, for the report's notes.

    ``describe(values)`` gets, for each of the evaluator's Params fields, the value(s) it took
    over the runs as text (``"0.1"``, or ``"{0.1, 1.0}"`` when runs differ) and returns a
    phrase ("linear SVM C grid [0.1, 1.0], extended by decades"), or "" to say nothing.
    """

    describe: Callable[[dict[str, str]], str]

    def __post_init__(self) -> None:
        if not callable(self.describe):
            raise TypeError(f"Note.describe must be a callable, got {self.describe!r}")


#: what an evaluator's ``reports`` may hold
REPORT_DECLARATIONS = (Metric, Criterion, Figure, Note)
