"""Data: the embedded MNIST (IDX reader, checksums, split), digits, and bad files."""

from __future__ import annotations

import gzip
import os
import shutil

import numpy as np
import pytest
from conftest import ROOT, tiny_toml, write_spec

from aebench.builtin.datasets import Digits, Mnist
from aebench.data import read_idx
from aebench.errors import DataError


def test_mnist_split_is_50k_10k_10k_and_checksummed():
    d = Mnist(Mnist.Params()).load()
    assert (len(d.train.y), len(d.valid.y), len(d.test.y)) == (50000, 10000, 10000)
    assert d.train.x.shape == (50000, 784) and d.train.x.dtype == np.uint8 and d.scale == 1 / 255
    assert set(np.unique(d.test.y)) == set(range(10))
    assert d.checksums["train-images-idx3-ubyte.gz"] == (ROOT / "data/mnist/SHA256SUMS").read_text().split()[4]
    sub = Mnist(Mnist.Params(subset=100, eval_subset=20)).load()
    assert len(sub.train.y) == 100 and len(sub.valid.y) == 20
    np.testing.assert_array_equal(sub.train.x, d.train.x[:100])


def test_idx_reader_checks_magic_and_size(tmp_path):
    raw = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
    (tmp_path / "ok.idx").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "ok.idx"), np.arange(6, dtype=np.uint8).reshape(2, 3))
    (tmp_path / "short.idx").write_bytes(raw[:-1])
    with pytest.raises(DataError, match="short.idx has 17 bytes but its header"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(DataError, match="bad magic"):
        read_idx(tmp_path / "bad.idx")
    with pytest.raises(DataError, match="missing"):
        read_idx(tmp_path / "nope.idx")


def _copy_mnist(tmp_path):
    folder = tmp_path / "mnist"
    shutil.copytree(ROOT / "data" / "mnist", folder)
    return folder


def test_checksum_mismatch_names_the_file(tmp_path, cli):
    folder = _copy_mnist(tmp_path)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(labels.read_bytes()))
    data[100] = (data[100] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(data)))
    spec = write_spec(
        tmp_path,
        tiny_toml(data={"name": "mnist", "subset": 100, "path": str(folder)}),
    )
    code, _, err = cli("run", spec, "--out", tmp_path / "out", "--quiet")
    assert code == 2 and "t10k-labels-idx1-ubyte.gz does not match its checksum" in err
    assert not (tmp_path / "out").exists()


def test_truncated_or_missing_file(tmp_path):
    folder = _copy_mnist(tmp_path)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz is missing"):
        Mnist(Mnist.Params(path=str(folder))).load()


def test_subset_larger_than_split(cli, tmp_path):
    spec = write_spec(tmp_path, tiny_toml({"data.subset": 5000}))
    code, _, err = cli("run", spec, "--out", tmp_path / "out", "--quiet")
    assert code == 2 and "data.subset = 5000 is larger than the split (1197 rows)" in err
    assert not (tmp_path / "out").exists()


def test_digits_is_small_and_scaled():
    d = Digits(Digits.Params()).load()
    assert (len(d.train.y), len(d.valid.y), len(d.test.y)) == (1197, 300, 300)
    assert d.train.x.max() * d.scale == 1.0


def test_missing_mnist_folder_says_how_to_get_it(tmp_path, cli):
    spec = write_spec(
        tmp_path,
        tiny_toml(data={"name": "mnist", "path": str(tmp_path / "nowhere")}),
    )
    code, _, err = cli("run", spec, "--out", tmp_path / "out", "--quiet")
    assert code == 2 and "does not exist" in err and "aebench data download mnist" in err


# ------------------------------------------- original .amat files: content, not only shape
def _rect_amat(folder, bad_row: int | None = None, pixel: str = "0.5", label: str = "1") -> None:
    """A tiny original-format `rect` folder (12 train rows, 5 test rows); row ``bad_row`` of the
    train file gets ``pixel`` as its pixel 7 and ``label`` as its label."""
    folder.mkdir()
    rows = []
    for k in range(12):
        pixels = ["0.25"] * 784
        lab = str(k % 2)
        if k + 1 == bad_row:
            pixels[7], lab = pixel, label
        rows.append(" ".join([*pixels, lab]))
    (folder / "rectangles_train.amat").write_text("\n".join(rows) + "\n")
    (folder / "rectangles_test.amat").write_text("\n".join(rows[:5]) + "\n")


@pytest.mark.parametrize(
    "pixel, label, words",
    [
        ("nan", "1", "row 3: pixel 7 is nan: pixels must be finite numbers in [0, 1]"),
        ("inf", "1", "row 3: pixel 7 is inf"),
        ("1.5", "1", "row 3: pixel 7 is 1.5"),
        ("0.5", "-3", "row 3: label -3 is not a class of this data set (0 to 1)"),
        ("0.5", "2", "row 3: label 2 is not a class of this data set (0 to 1)"),
        ("0.5", "0.5", "row 3: label 0.5 is not an integer"),
    ],
)
def test_amat_rows_are_checked_by_content_naming_file_and_row(tmp_path, cli, pixel, label, words):
    folder = tmp_path / "rect_amat"
    _rect_amat(folder, bad_row=3, pixel=pixel, label=label)
    spec = write_spec(
        tmp_path,
        tiny_toml(data={"name": "rect", "source": "amat", "path": str(folder)}),
    )
    code, _, err = cli("run", spec, "--out", tmp_path / "out", "--quiet")
    assert code == 2 and "Traceback" not in err, err
    assert f"data file {folder / 'rectangles_train.amat'}, {words}" in err, err
    assert not (tmp_path / "out").exists()


def test_good_amat_rows_still_load(tmp_path):
    from aebench.builtin.datasets import Rect

    folder = tmp_path / "rect_amat"
    _rect_amat(folder)
    d = Rect(Rect.Params(source="amat", path=str(folder))).load()
    assert (len(d.train.y), len(d.valid.y), len(d.test.y)) == (10, 2, 5) and set(d.train.y) == {0, 1}


def test_a_downloaded_archive_with_a_foreign_label_is_refused(tmp_path):
    import zipfile

    from aebench.data.download import validate_archive

    row = " ".join(["0.5"] * 784)
    path = tmp_path / "rectangles.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("rectangles_train.amat", f"{row} 0\n{row} -3\n")
        zf.writestr("rectangles_test.amat", f"{row} 1\n")
    with pytest.raises(DataError, match="line 2 .* label -3 is not a class of this data set \\(0 to 1\\)"):
        validate_archive("rect", path)


def test_importing_aebench_pins_cpu_kernels_to_one_path_unless_the_user_chose():
    """MKL, oneDNN and ATen pick kernels by CPU; aebench pins them (before torch loads) so that the same
    versions and seeds give the same numbers on another x86 machine (issue: notebook 03 moved)."""
    import subprocess
    import sys

    code = "import os, aebench, torch; print(os.environ['MKL_CBWR'], os.environ['ONEDNN_MAX_CPU_ISA'])"
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["AVX2", "AVX2"]  # MKL's and oneDNN's AVX2 paths
    env["MKL_CBWR"] = "AUTO"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "AUTO"  # the user's own setting wins
