"""What a run is made of while it trains, and what training returns (public API).

:class:`RunContext` is what plug-ins receive (evaluators, callbacks, objectives);
:class:`StageBatch` is what a custom :class:`~aebench.components.Objective` is called with;
:class:`EpochRecord` is one epoch's row of numbers and :class:`MemberResult` what the
engine's ``Trainer.run()`` returns for each member. Nothing here imports the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import xarray as xr

from aebench.components import Corruption, DataSplits, Model, Regularizer, Stage


@dataclass
class DeviceSplit:
    """One split kept on the device in its stored dtype (uint8 for images), converted per batch."""

    x: torch.Tensor
    y: torch.Tensor
    scale: float

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def rows(self, idx: torch.Tensor | slice) -> torch.Tensor:
        return self.x[idx].to(torch.float32).mul_(self.scale)


@dataclass
class EpochRecord:
    """One epoch of one run: the training numbers and the per-epoch values (evaluators'
    ``on_epoch`` results, ``class_error`` of a supervised stage), each an ``xarray.DataArray``."""

    epoch: int
    stage: str
    loss: float
    steps: int
    seconds: float
    values: dict[str, xr.DataArray] = field(default_factory=dict)

    def by_split(self, name: str) -> dict[str, float]:
        """A per-split value (e.g. ``class_error``) keyed by split name."""
        da = self.values[name]
        return {str(s): float(da.sel(split=s)) for s in da["split"].values}

    def to_json(self) -> dict[str, Any]:
        """Plain data (checkpoints keep records as JSON text: ``weights_only`` loads no objects)."""
        head = {"epoch": self.epoch, "stage": self.stage, "loss": self.loss, "steps": self.steps}
        return {**head, "seconds": self.seconds, "values": {k: v.to_dict() for k, v in self.values.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EpochRecord:
        values = {k: xr.DataArray.from_dict(v) for k, v in d["values"].items()}
        return cls(d["epoch"], d["stage"], d["loss"], d["steps"], d["seconds"], values)


@dataclass
class MemberResult:
    """What training one member (run) of a batch came to."""

    run_id: str
    records: list[EpochRecord]
    failure: str | None = None  # why the member failed (divergence), None if it trained to the end
    stop_reason: str | None = None  # a callback's stop request, or None
    hook_errors: list[str] = field(default_factory=list)
    train_seconds: float = 0.0  # the member's share of the training time, all stages

    @property
    def failed(self) -> bool:
        return self.failure is not None


@dataclass
class RunContext:
    """Everything a run owns; passed to evaluators and to the callback hooks.

    ``records`` grows by one :class:`EpochRecord` per epoch (the ``timing`` evaluator reads
    it); ``hook_errors`` collects callbacks' errors (``status.json``); ``files`` holds files an
    evaluator makes for the run folder (name -> bytes: written by the process that owns the
    output folder, which need not be the one that trains); ``callbacks`` are the run's own
    :class:`~aebench.components.Callback` instances; ``out`` is the output folder where this
    process sees it (``None`` on a worker without the shared folder: write there only through
    ``files``, or to a place of your own). While the Trainer runs, the methods below steer it.
    """

    run_id: str
    spec: Any  # aebench.spec.RunSpec
    model: Model
    data: DataSplits
    splits: dict[str, DeviceSplit]
    device: torch.device
    generator: torch.Generator  # on ``device``: shuffling and corruption
    corruptions: list[Corruption]
    regularizers: list[Regularizer]
    stages: list[Stage]
    head: torch.nn.Linear | None = None
    stop_reason: str | None = None
    records: list[EpochRecord] = field(default_factory=list)
    hook_errors: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    callbacks: list[Any] = field(default_factory=list)  # this run's Callback instances (the spec's, in order)
    out: Path | None = None  # the output folder (--out) where the process training this run sees it, else None
    control: Any = None  # the Trainer's handle while it trains this run (see :class:`Control`)

    # ----------------------------------------------- steering the Trainer (callbacks)
    def _control(self) -> Control:
        if self.control is None:
            raise RuntimeError("this run is not training: the Trainer's controls exist only while it runs")
        return self.control

    @property
    def stage(self) -> Stage:
        """The stage training now."""
        return self._control().stage()

    @property
    def criterion(self) -> Any:
        """The :class:`~aebench.hookspecs.Criterion` the current stage's target declares, or None."""
        return self._control().criterion()

    @property
    def start_loss(self) -> float | None:
        """The current stage's first batch loss, or None where the target says its loss is no
        yardstick for a blow-up (or before the first batch)."""
        return self._control().start_loss()

    def stop_stage(self, reason: str) -> None:
        """End the current stage for this run after this epoch (early stopping); the next stage goes on."""
        if not isinstance(reason, str):
            raise TypeError(f"stop_stage(reason): reason must be text, got {type(reason).__name__}")
        self._control().stop_stage(str.__str__(reason))

    def fail(self, reason: str) -> None:
        """Mark this run ``failed`` with ``reason`` (divergence); the other members go on."""
        self._control().fail(str(reason))

    def weights(self) -> dict[str, torch.Tensor]:
        """A copy of the run's trained tensors (model and head) as the Trainer holds them."""
        return self._control().weights()

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Put back tensors that :meth:`weights` returned."""
        self._control().load_weights(weights)

    def request_checkpoint(self) -> None:
        """Write the resumable checkpoint after this epoch (every member's callbacks' states included)."""
        self._control().request_checkpoint()

    def request_stop(self, reason: str) -> None:
        """End the run after the current epoch (callbacks' early stopping).

        ``reason`` must be text: anything else raises ``TypeError`` here, at the plug-in's
        call, so its hook's error names the plug-in and the run goes on without stopping."""
        if not isinstance(reason, str):
            raise TypeError(f"request_stop(reason): reason must be text, got {type(reason).__name__}")
        self.stop_reason = str.__str__(reason)  # a plain str (a subclass's methods are plug-in code)

    def note_hook_errors(self, errors: list[str]) -> None:
        """Keep callbacks' errors with the run (status.json ``hook_errors``), once each."""
        self.hook_errors.extend(e for e in errors if e not in self.hook_errors)

    def checked_stop_reason(self) -> str | None:
        """``stop_reason`` as text, after plug-ins had it: one that assigned something other
        than text (instead of calling :meth:`request_stop`) has it dropped and noted."""
        reason = self.stop_reason
        if reason is None or type(reason) is str:
            return reason
        self.stop_reason = None
        self.note_hook_errors(
            [f"a plug-in set stop_reason to a {type(reason).__name__}, not text: ignored (use run.request_stop)"]
        )
        return None

    def batches(
        self, split: str, batch_size: int, max_rows: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Clean (uncorrupted) evaluation batches of ``split`` in order."""
        s = self.splits[split]
        n = len(s) if max_rows is None else min(max_rows, len(s))
        for start in range(0, n, batch_size):
            yield s.rows(slice(start, min(start + batch_size, n))), s.y[start : start + batch_size]

    def class_error(self, split: str, batch_size: int = 1000) -> float:
        """Error rate of the softmax head on the top code of a whole split."""
        wrong = n = 0
        with torch.no_grad():
            for x, y in self.batches(split, batch_size):
                wrong += int((self.head(self.model.encode(x)).argmax(1) != y).sum())
                n += len(y)
        return wrong / max(n, 1)

    def features(self, split: str, upto: int | None = None, batch_size: int = 1000) -> torch.Tensor:
        """Clean encodings of a whole split (top layer by default)."""
        with torch.no_grad():
            return torch.cat([self.model.encode(x, upto) for x, _ in self.batches(split, batch_size)])


class Control(Protocol):
    """What the Trainer offers one run's callbacks (through the :class:`RunContext` methods)."""

    def stage(self) -> Stage: ...

    def criterion(self) -> Any: ...

    def start_loss(self) -> float | None: ...

    def stop_stage(self, reason: str) -> None: ...

    def fail(self, reason: str) -> None: ...

    def weights(self) -> dict[str, torch.Tensor]: ...

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None: ...

    def request_checkpoint(self) -> None: ...


class StageBatch(Protocol):
    """One stage of S members, as a custom objective sees it (the engine's
    ``aebench.engine.stage.StageBatch`` is the implementation): ``batch(x, y)`` is each
    member's loss, shape (S,)."""

    stages: list[Stage]  # member s's own Stage (same shape; lr, alpha, options may differ)
    stage: Stage  # the first member's
    contexts: list[RunContext]
    net: Any  # the model (S = 1) or its batched form
    alpha: float | torch.Tensor

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def member_values(self, get: Callable[[Stage], float]) -> float | torch.Tensor: ...

    def each(self, h: torch.Tensor, fn: Callable[[int, torch.Tensor, torch.Generator], torch.Tensor]) -> torch.Tensor:
        """``fn(s, h_s, generator_s)`` per member, results stacked as ``h`` is."""
        ...

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]: ...

    def recon(self, target: torch.Tensor, pre: torch.Tensor, i: int) -> torch.Tensor: ...


__all__ = ["Control", "DeviceSplit", "EpochRecord", "MemberResult", "RunContext", "StageBatch"]
