"""The hooks a plug-in implements.

A plug-in is a module registered under the ``aebench`` entry-point group::

    [project.entry-points.aebench]
    my_plugin = "my_package.aebench_plugin"

and decorates functions with :data:`aebench.hookimpl`. Each *component* hook returns a
list of component classes (see :mod:`aebench.components` for the base class of each
kind); each *callback* hook is called during every run. A plug-in implements only the
hooks it needs. aebench's own built-ins (``aebench/builtin/``) use these same hooks.
"""

from __future__ import annotations

from typing import Any

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
    """


@hookspec
def aebench_on_run_start(run: Any) -> None:
    """Called once before a run trains. ``run`` is the RunContext (spec, model, data)."""


@hookspec
def aebench_on_epoch_end(run: Any, epoch: int, metrics: dict[str, float]) -> None:
    """Called after every epoch with the scalar metrics of that epoch.

    ``metrics`` holds ``loss`` and ``stage`` plus whatever the evaluators recorded (e.g.
    ``recon_error/valid``). Call ``run.request_stop("reason")`` to end the run early
    (early stopping); the run is then recorded as done with the reason.
    """


@hookspec
def aebench_on_run_end(run: Any, result: Any) -> None:
    """Called once after a run, with its per-run ``xarray.Dataset`` (or ``None`` if it failed)."""
