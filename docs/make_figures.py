"""Regenerate the figures in docs/ (python docs/make_figures.py)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import aebench  # noqa: E402
from aebench.data import variations  # noqa: E402

HERE = Path(__file__).parent / "figures"


def variation_samples(n: int = 8) -> None:
    d = aebench.registry().get("dataset", "mnist")().load()
    digits = (d.train.x[:n].reshape(-1, 28, 28) / 255.0, d.train.y[:n])
    names = ["mnist-basic", *[k for k in variations.SIZES if k != "mnist-basic"]]
    fig, axes = plt.subplots(len(names), n, figsize=(n * 0.8, len(names) * 0.9))
    for r, name in enumerate(names):
        x, y = variations.generate(name, digits, n, np.random.default_rng(r))
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(x[c].reshape(28, 28), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(str(y[c]), fontsize=6, labelpad=1)
        axes[r, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.2)
    fig.savefig(HERE / "variations.png", dpi=110)


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    variation_samples()
