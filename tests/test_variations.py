"""The Larochelle et al. variation sets: recipes, determinism, cache, .amat, downloads, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import ROOT, tiny_toml

import aebench
from aebench.builtin.datasets import make_variation
from aebench.data import cache, variations
from aebench.data import download as dl
from aebench.data.amat import read_amat
from aebench.data.download import download
from aebench.errors import DataError


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize(
    "name", ["rect", "rect-img", "convex", "mnist-rot", "mnist-bg-rand", "mnist-bg-img", "mnist-bg-img-rot"]
)
def test_generators_are_seeded_balanced_and_in_range(name):
    digits = None
    if name.startswith("mnist"):
        d = aebench.registry().get("dataset", "mnist")().load()
        digits = (d.train.x[:400].reshape(-1, 28, 28) / 255.0, d.train.y[:400])
    a = variations.generate(name, digits, 400, np.random.default_rng(3))
    b = variations.generate(name, digits, 400, np.random.default_rng(3))
    assert a[0].tobytes() == b[0].tobytes() and (a[1] == b[1]).all()
    assert a[0].shape == (400, 784) and a[0].dtype == np.uint8
    if not name.startswith("mnist"):
        assert 0.4 < a[1].mean() < 0.6  # two balanced classes


def test_recipes_do_what_they_say():
    rng = np.random.default_rng(0)
    masks, labels = variations.rectangles(200, rng, outline=False)
    for m, lab in zip(masks, labels):
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        assert (len(rows) > len(cols)) == bool(lab) and len(rows) != len(cols)
    regions, labels = variations.convex_sets(80, rng)
    # Independent checks: a convex region has contiguous rows and columns; a non-convex one
    # leaves out pixel centres inside its hull (Delaunay point location, not the generator's test).
    from scipy.spatial import Delaunay

    grid = np.stack(np.mgrid[0:28, 0:28], -1).reshape(-1, 2) + 0.5
    for region, label in zip(regions, labels):
        m = region.ravel()
        inside = Delaunay(grid[m]).find_simplex(grid) >= 0
        missing = (inside & ~m).sum() / inside.sum()
        runs_ok = all(
            len(ix) == 0 or ix[-1] - ix[0] + 1 == len(ix) for a in (region, region.T) for ix in map(np.flatnonzero, a)
        )
        assert (runs_ok and missing == 0) if label == 1 else missing >= 0.05, (label, missing)
    img = np.zeros((1, 28, 28))
    img[0, 14, 20] = 1.0
    turned = variations.rotate(img, np.random.default_rng(1))
    assert turned.sum() == pytest.approx(1.0, abs=0.05)  # mass kept, moved on the circle of radius 6.5
    y, x = np.unravel_index(turned[0].argmax(), (28, 28))
    assert np.hypot(y - 13.5, x - 13.5) == pytest.approx(6.5, abs=1.0)
    digit = np.zeros((1, 28, 28))
    digit[0, 10:15, 10:12] = 1.0
    bg = variations.with_background(digit, np.full((1, 28, 28), 0.3))
    assert bg[0, 12, 11] == 1.0 and bg[0, 0, 0] == 0.3  # the brighter of digit and background


def test_make_caches_atomically_hits_and_rebuilds_corrupt(data_home, cli):
    code, out, _ = cli("data", "make", "rect", "--quiet")
    assert code == 0 and "generated" in out
    arrays, digest, cached = make_variation("rect", 0)
    assert cached and [len(arrays[f"{s}_y"]) for s in ("train", "valid", "test")] == [1000, 200, 50000]
    assert abs(arrays["test_y"].mean() - 0.5) < 0.02
    code, out, _ = cli("data", "make", "rect", "--quiet")
    assert "cache hit" in out
    npz, meta = cache.paths("rect", 0)
    assert not [p for p in data_home.iterdir() if p.suffix == ".tmp"]
    with np.load(npz) as f:
        damaged = {k: f[k].copy() for k in cache.KEYS}
    damaged["test_x"][0, 0] ^= 1
    with open(npz, "wb") as fh:
        np.savez(fh, **damaged)
    with pytest.warns(UserWarning, match="does not match its checksum"):
        again, digest2, cached = make_variation("rect", 0)
    assert not cached and digest2 == digest  # rebuilt to the same bytes
    code, out, _ = cli("data", "list")
    assert code == 0 and digest[:16] in out
    names = {line.split()[0] for line in out.splitlines()[1:]}
    assert names >= {"mnist", "digits", *variations.SIZES}  # all ten


def test_a_variation_set_runs_from_a_spec(tmp_path):
    text = tiny_toml({"data.name": "rect"})
    ds = aebench.run(aebench.Spec.from_text(text), out=tmp_path / "o", progress=False)
    assert "rect" in json.loads(ds.attrs["data_checksums"])


def _write_amat(path, x, y):
    np.savetxt(path, np.column_stack([x / 255.0, y]), fmt="%.6g")


def test_amat_reader_and_source(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 784)).astype(np.uint8)
    y = rng.integers(0, 2, 12)
    folder = tmp_path / "rect_amat"
    folder.mkdir()
    _write_amat(folder / "rectangles_train.amat", x, y)
    _write_amat(folder / "rectangles_test.amat", x[:5], y[:5])
    rx, ry = read_amat(folder / "rectangles_train.amat")
    assert (rx == x).all() and (ry == y).all()
    d = (
        aebench.registry()
        .get("dataset", "rect")(aebench.registry().get("dataset", "rect").Params(source="amat", path=str(folder)))
        .load()
    )
    assert (len(d.train.y), len(d.valid.y), len(d.test.y)) == (10, 2, 5)  # the original 1000:200 split
    (folder / "bad_test.amat").write_text("1 2 3\n")
    with pytest.raises(DataError, match="one \\*train\\*.amat and one \\*test\\*.amat"):
        aebench.registry().get("dataset", "rect")(
            aebench.registry().get("dataset", "rect").Params(source="amat", path=str(folder))
        ).load()
    with pytest.raises(DataError, match="3 columns"):
        read_amat(folder / "bad_test.amat")


def test_download_verifies_checksums_and_falls_back_to_the_next_mirror(tmp_path, cli, monkeypatch):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in (ROOT / "data" / "mnist").glob("*.gz"):
        (broken / f.name).write_bytes(b"not the file")
    good = tmp_path / "good"
    shutil.copytree(ROOT / "data" / "mnist", good)
    dest = tmp_path / "dl"
    code, out, err = cli(
        "data",
        "download",
        "mnist",
        "--mirror",
        f"file://{tmp_path / 'missing'}",
        "--mirror",
        f"file://{broken}",
        "--mirror",
        f"file://{good}",
        "--dest",
        dest,
    )
    assert code == 0, err
    assert sorted(p.name for p in dest.iterdir()) == sorted([*(p.name for p in good.glob("*.gz")), "SHA256SUMS"])
    assert aebench.registry().get("dataset", "mnist")(
        aebench.registry().get("dataset", "mnist").Params(path=str(dest), subset=10)
    ).load().train.x.shape == (10, 784)
    monkeypatch.setattr(dl, "MNIST_MIRRORS", [])  # the network is closed here: only our mirror
    with pytest.raises(DataError, match="from any mirror"):
        download("mnist", tmp_path / "dl2", [f"file://{broken}"])
    assert not (tmp_path / "dl2" / "train-images-idx3-ubyte.gz").exists()  # nothing half-written


def test_unknown_data_set_and_bad_make(cli):
    code, _, err = cli("data", "make", "convx")
    assert code == 2 and "unknown dataset 'convx'" in err and "'convex'" in err
    code, _, err = cli("data", "make", "mnist")
    assert code == 2 and "not a generated data set" in err
    code, _, err = cli("data", "download", "digits")
    assert code == 2 and "no upstream" in err


def test_rectangles_follow_larochelles_constraints():
    """rect: |h - w| >= 3; rect-img: sides >= 10, |h - w| >= 5, area 25-75 % (measured on the masks)."""
    rng = np.random.default_rng(5)
    for outline, low, gap, area in ((True, 5, 3, (0, 784)), (False, 10, 5, (196, 588))):
        masks, labels = variations.rectangles(500, rng, outline=outline)
        rows = masks.any(2).sum(1)
        cols = masks.any(1).sum(1)
        assert (np.abs(rows - cols) >= gap).all() and (rows >= low).all() and (cols >= low).all()
        assert ((rows * cols >= area[0]) & (rows * cols <= area[1])).all()
        assert ((rows > cols) == labels.astype(bool)).all()
        assert 0.4 < labels.mean() < 0.6


def test_background_photographs_are_twenty_and_patches_have_texture():
    images = variations.grey_images()
    assert len(images) == 20 and all(img.ndim == 2 and 0 <= img.min() and img.max() <= 1 for img in images)
    patches = variations.image_patches(300, np.random.default_rng(0))
    assert np.allclose(patches.min(axis=(1, 2)), 0) and np.allclose(patches.max(axis=(1, 2)), 1)  # full grey range
    raw = variations.image_patches(300, np.random.default_rng(0), stretch=False)
    assert (raw.std(axis=(1, 2)) >= variations.MIN_PATCH_STD).all()
    unfiltered = variations.image_patches(300, np.random.default_rng(0), min_std=0.0, stretch=False)
    assert (unfiltered.std(axis=(1, 2)) < variations.MIN_PATCH_STD).mean() > 0.2  # the rule has work to do


def test_digit_is_drawn_over_the_background():
    digit = np.zeros((1, 28, 28))
    digit[0, 5, 5], digit[0, 6, 6] = 0.9, 0.05  # a stroke pixel and a faint rim pixel
    out = variations.with_background(digit, np.full((1, 28, 28), 0.4))
    assert out[0, 5, 5] == 0.9 and out[0, 6, 6] == 0.4 and out[0, 0, 0] == 0.4  # no dark halo


def test_mnist_based_sets_draw_their_own_digits(data_home, monkeypatch):
    monkeypatch.setitem(variations.SIZES, "mnist-basic", (50, 10, 10))
    monkeypatch.setitem(variations.SIZES, "mnist-rot", (50, 10, 10))
    basic, _, _ = make_variation("mnist-basic", 0)
    rot, _, _ = make_variation("mnist-rot", 0)
    assert (basic["train_y"] != rot["train_y"]).mean() > 0.5  # another sample of digits, not the same in order


def test_a_cached_set_of_an_older_recipe_is_rebuilt(data_home):
    arrays, digest, cached = make_variation("rect", 0)
    npz, meta = cache.paths("rect", 0)
    info = json.loads(meta.read_text())
    assert info["recipe"] == variations.RECIPE and not cached
    meta.write_text(json.dumps({**info, "recipe": "aebench.data.variations v1"}))
    again, digest2, cached = make_variation("rect", 0)
    assert not cached and digest2 == digest and json.loads(meta.read_text())["recipe"] == variations.RECIPE


#: sha256 (16 hex digits) of the first generated chunk of each split at seed 0, made in the locked
#: environment (requirements.lock). A change here means the same spec trains on other data.
FINGERPRINTS = {
    "mnist-basic": {"train": "3a6150727ea7ad1d", "valid": "c280da99f9c54563", "test": "ea69894d35efd41b"},
    "mnist-rot": {"train": "c0ff878b6ff54ac4", "valid": "50402c2f72cba5fd", "test": "5d9f5a52852e16c7"},
    "mnist-bg-rand": {"train": "2f3c6511ad95a005", "valid": "b673bc2f4e1fd5ae", "test": "773cddddeb90ea6c"},
    "mnist-bg-img": {"train": "7a1e6846d594277b", "valid": "ac83c3c302d4fcfb", "test": "0d4dcaefc7b22630"},
    "mnist-bg-img-rot": {"train": "0256e1233138851b", "valid": "f951d7fb822201d1", "test": "c797f8ad343f8d4a"},
    "rect": {"train": "5a99669ae1e31c3e", "valid": "83b3a2b43183173a", "test": "96949a050c90d164"},
    "rect-img": {"train": "c67ec2b5d6a95e27", "valid": "06236951ff5bec06", "test": "e24a20072ce1dc8e"},
    "convex": {"train": "3dfb93ab3b16fcfb", "valid": "f9bd12472a6a6d1f", "test": "70808da32c864d37"},
}


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_generated_sets_are_the_same_bytes_as_in_the_locked_environment(name):
    from aebench.builtin.datasets import fingerprint

    got = fingerprint(name, seed=0)
    changed = [split for split in ("train", "valid", "test") if got[split] != FINGERPRINTS[name][split]]
    assert not changed, (
        f"generated set {name!r} changed in split(s) {changed} (got {got}): numpy's generator streams, "
        "scipy's Qhull or the photographs of scikit-image / scikit-learn differ from requirements.lock "
        "(docs/data.md, 'What the recipes depend on')"
    )


def test_fingerprints_hash_what_make_builds(data_home):
    from aebench.builtin.datasets import CHUNK, fingerprint

    arrays, _, _ = make_variation("rect", 0)
    first = {
        split: cache.arrays_digest(
            {"x": arrays[f"{split}_x"][:CHUNK], "y": arrays[f"{split}_y"][:CHUNK]}, keys=("x", "y")
        )[:16]
        for split in ("train", "valid", "test")
    }
    assert fingerprint("rect", 0) == first
