"""Devices and precision: CUDA runs match CPU (only where CUDA exists), mixed precision is opt-in."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from conftest import TINY, tiny_toml, write_spec

import aebench

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on a lent GPU)")


def test_bfloat16_mixed_precision_trains_close_to_float32(tmp_path):
    fp32 = aebench.run(write_spec(tmp_path, TINY, "a.toml"), out=tmp_path / "a", progress=False)
    bf16 = aebench.run(
        write_spec(tmp_path, 'precision = "bfloat16"\n' + TINY, "b.toml"), out=tmp_path / "b", progress=False
    )
    a, b = fp32["recon_error_final"].values, bf16["recon_error_final"].values
    assert not np.array_equal(a, b)  # it really ran in another precision
    np.testing.assert_allclose(b, a, rtol=0.05)


def test_bad_precision_is_a_spec_error(cli, tmp_path):
    code, _, err = cli("validate", write_spec(tmp_path, 'precision = "float8"\n' + TINY))
    assert code == 2 and "precision = 'float8'" in err


@cuda
def test_cuda_run_matches_cpu(tmp_path):
    spec = write_spec(tmp_path, TINY)
    cpu = aebench.run(spec, out=tmp_path / "cpu", device="cpu", progress=False)
    gpu = aebench.run(spec, out=tmp_path / "gpu", device="cuda", progress=False)
    assert gpu.attrs["device"].startswith("cuda")
    # Same init (drawn on the CPU) but the device's own RNG for shuffling and noise: close, not equal.
    xr.testing.assert_allclose(gpu["recon_error_final"], cpu["recon_error_final"], rtol=0.05)


@cuda
def test_cuda_auto_device_and_data_on_the_device(tmp_path):
    from aebench.engine.runner import build_context
    from aebench.spec import Spec

    ctx = build_context(Spec.from_text(TINY).runs[0], torch.device("cuda"))
    assert ctx.splits["train"].x.is_cuda and ctx.splits["train"].x.dtype == torch.uint8
    ds = aebench.run(
        write_spec(tmp_path, 'precision = "float16"\n' + TINY), out=tmp_path / "o", device="auto", progress=False
    )
    assert str(ds["status"].item()) == "done" and ds.attrs["device"].startswith("cuda")


@cuda
def test_cuda_ensemble_members_equal_their_solo_cuda_runs(tmp_path):
    text = tiny_toml(seeds=[0, 1, 2])
    solo = aebench.run(write_spec(tmp_path, text, "solo.toml"), out=tmp_path / "solo", device="cuda", progress=False)
    ens = aebench.run(
        write_spec(tmp_path, text, "ens.toml"), out=tmp_path / "ens", device="cuda", progress=False, ensemble=True
    )
    xr.testing.assert_allclose(ens["recon_error_final"], solo["recon_error_final"], rtol=2e-4, atol=1e-5)


@cuda
def test_cuda_compiled_batched_finetune_equals_eager(tmp_path):
    """compile = true on CUDA (CUDA graphs, reduce-overhead) over every stage of a batch."""
    schedule = [{"name": "joint", "epochs": 2}, {"name": "finetune", "epochs": 3, "patience": 2}]
    spec = write_spec(tmp_path, tiny_toml(ensemble=True, seeds=[0, 1], schedule=schedule))
    eager = aebench.run(spec, out=tmp_path / "eager", device="cuda", progress=False)
    compiled = aebench.run(spec, out=tmp_path / "compiled", device="cuda", progress=False, compile=True)
    for name in ("loss", "class_error", "recon_error_final"):
        xr.testing.assert_allclose(compiled[name], eager[name], rtol=1e-3, atol=1e-4)
