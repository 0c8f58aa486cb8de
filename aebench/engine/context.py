"""Moving a run's data to its device (the RunContext itself is public: :mod:`aebench.context`)."""

from __future__ import annotations

import torch

from aebench.components import SPLITS, DataSplits
from aebench.context import DeviceSplit


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
