"""`aebench demo`: joint vs layer-wise training of a 2-layer tied denoising autoencoder on MNIST."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

DEMO_SPEC = """\
name = "demo: DAE-2, joint vs layer-wise (MNIST subset)"
description = "{description}"
seeds = {seeds}
data = {{ name = "mnist", subset = {subset}, eval_subset = {eval_subset} }}
model = {{ name = "stacked", layers = [{width}, {width}], tied = true, activation = "sigmoid", loss = "cross-entropy" }}
corruption = {{ name = "gaussian", level = 0.3 }}
schedule = {{ name = "joint", epochs = {epochs} }}
optimizer = {{ name = "rmsprop", lr = 0.001, decay = 0.9, batch_size = 100 }}
evaluate = {{ recon = {{}} }}

[sweep]
"schedule.name" = ["joint", "layerwise"]
"""

#: the demo's own figure, beside its results
FIGURE = "recon_curves.png"
#: the sizes ``aebench demo`` trains, and ``--quick``'s
FULL = {"subset": 5000, "eval_subset": 2000, "width": 1000, "epochs": 10}
QUICK = {"subset": 500, "eval_subset": 200, "width": 64, "epochs": 2}


def _words(subset: int, eval_subset: int, width: int, epochs: int, seeds: tuple[int, ...]) -> str:
    """What the demo trains, in words, from the numbers it trains with (so it cannot say one and train another)."""
    scale = "" if width == 1000 else f" (the paper has 1000; {width} here to be quick)"
    return (
        f"Zhou et al. Fig. 3 at small scale: 2 tied sigmoid layers of {width} units{scale}, gaussian noise 0.3, "
        f"cross-entropy, RMSprop; {subset:,} MNIST training rows, {eval_subset:,} validation and test rows, "
        f"{epochs} epochs (per layer for layer-wise), {len(seeds)} seeds."
    )


def demo_spec(
    subset: int = 5000, eval_subset: int = 2000, width: int = 1000, epochs: int = 10, seeds: tuple[int, ...] = (0, 1)
) -> str:
    return DEMO_SPEC.format(
        subset=subset,
        eval_subset=eval_subset,
        width=width,
        epochs=epochs,
        seeds=list(seeds),
        description=_words(subset, eval_subset, width, epochs, seeds),
    )


def describe(quick: bool = False) -> str:
    """The line ``aebench demo`` prints before it trains."""
    return "demo: " + _words(**(QUICK if quick else FULL), seeds=(0, 1))


def final_table(ds: xr.Dataset) -> str:
    """Final reconstruction error per scheme: mean ± 95 % t-interval over seeds (the report's ±), train/valid/test."""
    from aebench.tables import interval_kind, paper_table

    final = ds["recon_error_final"]
    schemes = [s.item() for s in final["schedule.name"]]
    frames = {
        split: paper_table(
            ds.assign(recon_final=final.sel(split=split, drop=True)),
            "recon_final",
            {scheme: {"schedule.name": scheme} for scheme in schemes},
            rows=None,
        )
        for split in ("train", "valid", "test")
    }
    lines = [f"{'scheme':<12} {'train':>16} {'valid':>16} {'test':>16} {'steps':>7} {'seconds':>8}"]
    for scheme in schemes:
        cells = []
        for frame in frames.values():
            mean, ci = frame[(scheme, "mean")].iloc[0], frame[(scheme, "ci")].iloc[0]
            cells.append(f"{mean:8.2f} ± {ci:5.2f}" if ci == ci else f"{mean:8.2f}")
        steps = int(ds["steps"].sel({"schedule.name": scheme}).max())
        secs = float(ds["train_seconds"].sel({"schedule.name": scheme}).mean())
        lines.append(f"{scheme:<12} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} {steps:>7d} {secs:>8.1f}")
    units = final.attrs.get("units", "")
    kind = interval_kind(frames["test"])
    lines.append(f"(reconstruction error in {units}, clean input through the whole stack; {kind})")
    return "\n".join(lines)


def run_demo(
    out: str | Path = "demo-results", quick: bool = False, progress: bool = True, device: str = "auto"
) -> xr.Dataset:
    import aebench
    from aebench.plots import recon_curves

    text = demo_spec(**QUICK) if quick else demo_spec(**FULL)
    out = Path(out)
    spec = aebench.Spec.from_text(text, source="demo spec")
    ds = aebench.run(spec, out=out, progress=progress, device=device, resume=(out / "spec.toml").exists())
    fig = recon_curves(ds)
    fig.savefig(out / FIGURE, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return ds
