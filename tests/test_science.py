"""The direction of Zhou et al. Fig. 3, at the paper's width (DESIGN §3's measured caution).

With 1000-unit layers on a 5k MNIST subset, joint training reaches a lower input-space
test reconstruction error than greedy layer-wise training (each layer trained as many
epochs as the joint stack). With 256-unit layers, 2k examples and 15 epochs layer-wise
won in a trial here, so this test keeps the paper's width and a 30-epoch budget. Measured
2026-12-03 on seeds 0–3: joint 66.1–66.7 nats, layer-wise 70.2–71.2 at 5,000 rows; at 3,000
rows two of the four seeds reversed (joint 74.2 and 73.6 against 73.4 and 73.5), so the
subset is not cut to save time.
"""

from __future__ import annotations

import pytest

import aebench

SPEC = """\
name = "fig3-direction"
seeds = [0, 1]
data = { name = "mnist", subset = 5000, eval_subset = 2000 }
model = { name = "stacked", layers = [1000, 1000], tied = true, activation = "sigmoid", loss = "cross-entropy" }
corruption = { name = "gaussian", level = 0.3 }
schedule = { name = "joint", epochs = 30 }
optimizer = { name = "rmsprop", lr = 0.001, decay = 0.9, batch_size = 100 }
evaluate = { recon = { every = 0 } }

[sweep]
"schedule.name" = ["joint", "layerwise"]
"""


@pytest.mark.timeout(1800)  # about 3 minutes on 2 idle cores: 4 runs at the paper's width
def test_joint_reconstructs_better_than_layerwise_on_every_seed(tmp_path):
    ds = aebench.run(aebench.Spec.from_text(SPEC), out=tmp_path / "fig3", progress=False)
    test = ds["recon_error_final"].sel(split="test")
    joint, layerwise = test.sel({"schedule.name": "joint"}), test.sel({"schedule.name": "layerwise"})
    assert (joint < layerwise).all(), test.values
    assert int(ds["steps"].sel({"schedule.name": "layerwise"}).max()) == 2 * int(
        ds["steps"].sel({"schedule.name": "joint"}).max()
    )
