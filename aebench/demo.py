"""`aebench demo`: joint vs layer-wise training of a 2-layer tied denoising autoencoder on MNIST."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

DEMO_SPEC = """\
name = "demo: DAE-2, joint vs layer-wise (MNIST subset)"
description = "Zhou et al. Fig. 3 at small scale: 2 tied sigmoid layers of 1000 units, gaussian noise 0.3, \
cross-entropy, RMSprop."
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


def demo_spec(
    subset: int = 5000, eval_subset: int = 2000, width: int = 1000, epochs: int = 10, seeds: tuple[int, ...] = (0, 1)
) -> str:
    return DEMO_SPEC.format(subset=subset, eval_subset=eval_subset, width=width, epochs=epochs, seeds=list(seeds))


def final_table(ds: xr.Dataset) -> str:
    """Final reconstruction error per scheme: mean ± std over seeds, train/valid/test."""
    final = ds["recon_error_final"]
    lines = [f"{'scheme':<12} {'train':>16} {'valid':>16} {'test':>16} {'steps':>7} {'seconds':>8}"]
    for scheme in final["schedule.name"].values:
        row = final.sel({"schedule.name": scheme})
        cells = [
            f"{float(row.sel(split=s).mean()):8.2f} ± {float(row.sel(split=s).std()):5.2f}"
            for s in ("train", "valid", "test")
        ]
        steps = int(ds["steps"].sel({"schedule.name": scheme}).max())
        secs = float(ds["train_seconds"].sel({"schedule.name": scheme}).mean())
        lines.append(f"{scheme:<12} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} {steps:>7d} {secs:>8.1f}")
    units = final.attrs.get("units", "")
    lines.append(f"(reconstruction error in {units}, clean input through the whole stack; mean ± std over seeds)")
    return "\n".join(lines)


def run_demo(
    out: str | Path = "demo-results", quick: bool = False, progress: bool = True, device: str = "auto"
) -> xr.Dataset:
    import aebench
    from aebench.plots import recon_curves

    text = demo_spec(subset=500, eval_subset=200, width=64, epochs=2) if quick else demo_spec()
    out = Path(out)
    spec = aebench.Spec.from_text(text, source="demo spec")
    ds = aebench.run(spec, out=out, progress=progress, device=device, resume=(out / "spec.toml").exists())
    fig = recon_curves(ds)
    fig.savefig(out / "recon_curves.png", dpi=120)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return ds
