"""What a run is made of while it trains: the RunContext handed to plug-ins."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from aebench.components import SPLITS, Corruption, DataSplits, Model, Regularizer, Stage


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


def to_device(data: DataSplits, device: torch.device) -> dict[str, DeviceSplit]:
    """Move every split to ``device`` once (pinned, non-blocking copies for CUDA)."""
    out = {}
    for name in SPLITS:
        split = data.split(name)
        x, y = torch.from_numpy(split.x), torch.from_numpy(split.y)
        if device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        out[name] = DeviceSplit(x.to(device, non_blocking=True), y.to(device, non_blocking=True), data.scale)
    return out


@dataclass
class RunContext:
    """Everything a run owns; passed to evaluators and to the callback hooks."""

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
    extras: dict[str, Any] = field(default_factory=dict)

    def request_stop(self, reason: str) -> None:
        """End the run after the current epoch (callbacks' early stopping).

        ``reason`` must be text: anything else raises ``TypeError`` here, at the plug-in's
        call, so its hook's error names the plug-in and the run goes on without stopping."""
        if not isinstance(reason, str):
            raise TypeError(f"request_stop(reason): reason must be text, got {type(reason).__name__}")
        # a plain str (a subclass's methods are plug-in code); "stage:" is the engine's own prefix
        text = str.__str__(reason)
        self.stop_reason = text if not text.startswith("stage:") else f"requested: {text}"

    def checked_stop_reason(self) -> str | None:
        """``stop_reason`` as text, after plug-ins had it: one that assigned something other
        than text (instead of calling :meth:`request_stop`) has it dropped and noted."""
        reason = self.stop_reason
        if reason is None or type(reason) is str:
            return reason
        self.stop_reason = None
        seen = self.extras.setdefault("hook_errors", [])
        note = f"a plug-in set stop_reason to a {type(reason).__name__}, not text: ignored (use run.request_stop)"
        if note not in seen:
            seen.append(note)
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
