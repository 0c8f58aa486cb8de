"""CLI edges: a sweep-key typo named in [sweep] with its close match, progress that shows the epoch just
ended, plain lines (no escape codes) when output is not a terminal, runs named by sweep point."""

from __future__ import annotations

import subprocess
import sys

from conftest import TINY, edit, write_spec

import aebench
from aebench.progress import PlainBar, run_label


def test_a_sweep_key_typo_names_sweep_and_the_close_key(cli, tmp_path):
    spec = write_spec(tmp_path, TINY + '[sweep]\n"schedule.nmae" = ["joint", "layerwise"]\n')
    code, _, err = cli("validate", spec)
    assert code == 2
    assert '[sweep] key "schedule.nmae": schedule has no key \'nmae\' (did you mean "schedule.name"?)' in err
    assert "its keys: epochs, lr, name" in err


def test_the_bar_shows_the_loss_of_the_epoch_that_just_ended(monkeypatch, tmp_path):
    """At every count n the bar's postfix is epoch n's loss (it showed epoch n-1's, and never the last)."""
    import aebench.engine.runner as runner

    seen: list[tuple[int, dict]] = []

    class Recorder(PlainBar):
        def update(self, n: int = 1) -> None:
            super().update(n)
            if n:  # update(0): the epochs a resumed run already has
                seen.append((self.n, dict(self.postfix)))

    monkeypatch.setattr(runner, "_bar", lambda total, label, opts: Recorder(total, label, "epoch"))
    spec = write_spec(tmp_path, edit(TINY, 'name = "joint", epochs = 2', 'name = "layerwise", epochs = 2'))
    ds = aebench.run(spec, out=tmp_path / "out", progress=True)
    loss = ds["loss"].isel(seed=0).values  # per epoch, from the results (independent of the bar)
    assert [n for n, _ in seen] == [1, 2, 3, 4]
    for n, postfix in seen:
        assert float(postfix["loss"]) == float(f"{loss[n - 1]:.4g}"), n
    assert [p["stage"] for _, p in seen] == ["layer0", "layer0", "layer1", "layer1"]


def test_piped_output_is_plain_lines_one_per_run_and_stage(tmp_path):
    spec = write_spec(
        tmp_path,
        edit(TINY, "seeds = [0]", "seeds = [0, 1]") + '[sweep]\n"schedule.name" = ["joint", "layerwise"]\n',
    )
    got = subprocess.run(
        [sys.executable, "-m", "aebench", "run", spec, "--out", tmp_path / "out"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert got.returncode == 0, got.stderr
    assert "\x1b" not in got.stderr and "\r" not in got.stderr and "\x1b" not in got.stdout
    lines = got.stderr.splitlines()
    assert "schedule=joint, seed 0: stage joint ended at epoch 2/2, loss" in got.stderr
    stages = [ln for ln in lines if ": stage " in ln]
    assert len(stages) == 2 * 1 + 2 * 2  # joint: one stage per run; layer-wise: one per layer
    assert [ln.split(":")[0] for ln in stages if "layer1" in ln] == [
        "schedule=layerwise, seed 0",
        "schedule=layerwise, seed 1",
    ]
    assert [ln.split(" (")[0] for ln in lines if ln.startswith("runs: ")] == [
        f"runs: {k}/4 recorded" for k in range(1, 5)
    ]
    assert "run-0000" not in got.stderr


def test_run_labels_name_the_sweep_point_and_seeds():
    assert run_label([{"schedule.name": "joint", "optimizer.lr": 0.01}], [3]) == "schedule=joint, lr=0.01, seed 3"
    assert run_label([{"optimizer.lr": 0.1}] * 3, [0, 1, 2]) == "lr=0.1, seeds 0, 1, 2"
    two = [{"data.name": "mnist", "optimizer.lr": lr} for lr in (0.001, 0.01) for _ in range(3)]
    assert run_label(two, [0, 1, 2] * 2) == "data=mnist, lr=0.001|0.01, seeds 0, 1, 2 (6 runs)"
    assert run_label([{}], [0]) == "seed 0"


def test_other_long_work_is_one_plain_line_when_it_ends(capsys):
    """Generating a data set (thousands of updates) writes one line off a terminal, not one per update."""
    import io

    from aebench.progress import bar

    out = io.StringIO()
    with PlainBar(62000, "generating rect", "img", stream=out) as b:
        for _ in range(62):
            b.update(1000)
    assert out.getvalue().startswith("generating rect: 62000/62000 img (") and out.getvalue().count("\n") == 1
    assert isinstance(bar(10, "x", "img"), PlainBar)  # pytest's captured stderr is not a terminal
