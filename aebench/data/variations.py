"""Seeded generators of the Larochelle et al. (2007) variation benchmarks.

Each generator returns ``(x, y)`` with x in [0, 1] as uint8 (value / 255), 28×28
flattened, for a given number of rows and a numpy Generator. The recipes follow the
paper's descriptions:

- ``mnist-basic``: MNIST digits re-split 10k/2k/50k (a seeded permutation of all 70k;
  every MNIST-based set draws its own permutation, seeded by its name and ``seed``).
- ``mnist-rot``: each digit rotated by an angle uniform in [0, 2π) (bilinear).
- ``mnist-bg-rand``: a background of noise uniform in [0, 1]; the digit is drawn over it
  (each pixel the brighter of digit and background).
- ``mnist-bg-img``: the background is a random 28×28 patch of one of 20 grey-scale natural
  photographs (the 18 that scikit-image ships in its wheel, ``PHOTOS``, and
  scikit-learn's ``china.jpg`` and ``flower.jpg``); patches with little texture (pixel
  standard deviation below ``MIN_PATCH_STD``) are redrawn, as in the original, and each
  patch is stretched to the full grey range.
- ``mnist-bg-img-rot``: rotation, then an image background.
- ``rect``: the outline of a rectangle (white on black); label 1 if taller than wide.
  Height and width are uniform in 5..28 and rejected when they differ by fewer than 3 pixels.
- ``rect-img``: a rectangle filled with one image patch over a background of another;
  sides at least 10 pixels, differing by at least 5, area 25–75 % of the image.
- ``convex``: a white region that is convex (intersection of random half-planes; label 1)
  or not (union of 2–3 such regions whose pixel count is clearly below its convex hull's;
  label 0).

``RECIPE`` names the version of these procedures and the digest of this file's source, so
that a cached set made by any other code (even one edit of a recipe, version number or not)
is rebuilt rather than silently reused.
"""

from __future__ import annotations

import functools

import numpy as np

SIDE = 28


def _recipe() -> str:
    import hashlib
    from pathlib import Path

    return f"aebench.data.variations v3 ({hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]})"


#: the recipes' version and source digest; cached sets of any other recipe are rebuilt
RECIPE = _recipe()


def set_rng(name: str, seed: int) -> np.random.Generator:
    """The generator of one set: seeded by the set's name as well as ``seed``."""
    import zlib

    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8).reshape(len(x), -1)


def rotate(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate each (28, 28) float image by an angle uniform in [0, 2π), bilinear, about its centre."""
    n = len(images)
    theta = rng.uniform(0, 2 * np.pi, n)
    c = (SIDE - 1) / 2
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64) - c
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    # inverse mapping: output pixel (y, x) samples the input at R(-θ)(y, x)
    sy = cos * yy - sin * xx + c
    sx = sin * yy + cos * xx + c
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    wy, wx = sy - y0, sx - x0
    out = np.zeros((n, SIDE, SIDE))
    idx = np.arange(n)[:, None, None]
    for dy, dx, w in ((0, 0, (1 - wy) * (1 - wx)), (1, 0, wy * (1 - wx)), (0, 1, (1 - wy) * wx), (1, 1, wy * wx)):
        yi, xi = y0 + dy, x0 + dx
        ok = (yi >= 0) & (yi < SIDE) & (xi >= 0) & (xi < SIDE)
        out += np.where(ok, images[idx, yi.clip(0, SIDE - 1), xi.clip(0, SIDE - 1)], 0.0) * w
    return out


#: the photographs that scikit-image ships inside its wheel (no download), plus scikit-learn's two
PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "page.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)
#: a patch whose pixel standard deviation is below this has "little texture" and is redrawn
MIN_PATCH_STD = 0.08


@functools.lru_cache(maxsize=1)
def grey_images() -> tuple[np.ndarray, ...]:
    """The 20 natural photographs as grey-scale floats in [0, 1] (Larochelle et al. used 20 from the internet)."""
    from pathlib import Path

    import skimage
    from skimage.io import imread
    from sklearn.datasets import load_sample_images

    images = [imread(Path(skimage.data.data_dir) / name) for name in PHOTOS]
    images += list(load_sample_images().images)
    return tuple(_grey(img) for img in images)


def _grey(img: np.ndarray) -> np.ndarray:
    img = img.astype(np.float64)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    return img / 255.0


def image_patches(
    n: int,
    rng: np.random.Generator,
    images: tuple[np.ndarray, ...] | None = None,
    min_std: float = MIN_PATCH_STD,
    stretch: bool = True,
) -> np.ndarray:
    """``n`` random 28×28 patches of random photographs, each stretched to the full grey range [0, 1].

    Near-flat patches (standard deviation below ``min_std`` before stretching) are redrawn,
    as in the original. The stretch is a calibration: with the photographs' own contrast
    an RBF SVM found ``mnist-bg-img`` easier than the original (16.7 % vs 22.6 %, see
    docs/data.md); stretched, it is as hard.
    """
    images = images or grey_images()
    out = np.empty((n, SIDE, SIDE))
    todo = np.arange(n)
    while len(todo):
        which = rng.integers(len(images), size=len(todo))
        for k, img in enumerate(images):
            rows = todo[which == k]
            ys = rng.integers(img.shape[0] - SIDE + 1, size=len(rows))
            xs = rng.integers(img.shape[1] - SIDE + 1, size=len(rows))
            for r, y, x in zip(rows, ys, xs):
                out[r] = img[y : y + SIDE, x : x + SIDE]
        todo = todo[out[todo].std(axis=(1, 2)) < min_std]
    if not stretch:
        return out
    lo, hi = out.min(axis=(1, 2), keepdims=True), out.max(axis=(1, 2), keepdims=True)
    return (out - lo) / np.maximum(hi - lo, 1e-12)


def with_background(digits: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The digit drawn over the background: each pixel is the brighter of the two.

    Keeping every non-zero digit pixel instead (``where(digit > 0, digit, background)``)
    leaves the digit's faint anti-aliased rim as a dark halo in the noise; measured with
    the paper's RBF-SVM protocol that made ``mnist-bg-rand`` about 1.5× harder than the
    original (21.3 % vs 14.58 %), while the maximum lands within its range.
    """
    return np.maximum(digits, background)


def rectangles(n: int, rng: np.random.Generator, outline: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Masks (n, 28, 28) of random rectangles and labels (1 = taller than wide).

    ``outline`` (``rect``): height and width uniform in 5..28, rejected when they differ by
    fewer than 3 pixels. Filled (``rect-img``): also each side at least 10, a difference of at
    least 5 pixels and an area between 25 % and 75 % of the image. The top-left corner is
    uniform over the positions where the whole rectangle fits.
    """
    masks = np.zeros((n, SIDE, SIDE), dtype=bool)
    labels = np.empty(n, dtype=np.int64)
    k = 0
    # rect: the original's size range is not published; sides from 3 made the set 1.5× harder
    # than published under the paper's RBF-SVM protocol, sides from 5 match it (docs/data.md)
    low, gap = (5, 3) if outline else (10, 5)
    while k < n:
        h, w = rng.integers(low, SIDE + 1, size=2)
        if abs(h - w) < gap or (not outline and not 0.25 * SIDE * SIDE <= h * w <= 0.75 * SIDE * SIDE):
            continue
        y, x = rng.integers(0, SIDE - h + 1), rng.integers(0, SIDE - w + 1)
        if outline:
            masks[k, y : y + h, [x, x + w - 1]] = True
            masks[k, [y, y + h - 1], x : x + w] = True
        else:
            masks[k, y : y + h, x : x + w] = True
        labels[k] = int(h > w)
        k += 1
    return masks, labels


_GRID = np.stack(np.mgrid[0:SIDE, 0:SIDE], -1).reshape(-1, 2).astype(np.float64) + 0.5


def _convex_regions(n: int, rng: np.random.Generator, low: int = 3, high: int = 8) -> np.ndarray:
    """Intersections of ``low``–``high`` random half-planes through points near the centre: (n, 784) bool."""
    k = high
    angles = rng.uniform(0, 2 * np.pi, (n, k))
    normals = np.stack([np.cos(angles), np.sin(angles)], -1)
    points = rng.uniform(4, SIDE - 4, (n, k, 2))
    active = np.arange(k)[None, :] < rng.integers(low, k + 1, size=(n, 1))
    side = normals @ _GRID.T - (points * normals).sum(-1)[..., None]  # (n, k, 784), one BLAS call
    return np.all((side <= 0) | ~active[..., None], axis=1)


def _nonconvexity(mask: np.ndarray) -> float:
    """Fraction of the pixels inside the region's convex hull that the region leaves out.

    0 for a (digitally) convex region. The hull is that of the region's pixel centres;
    a grid pixel is inside when it satisfies every facet inequality of the hull.
    """
    from scipy.spatial import ConvexHull, QhullError

    pts = _GRID[mask]
    if len(pts) < 4:
        return 0.0
    try:
        eq = ConvexHull(pts).equations
    except QhullError:
        return 0.0
    inside = np.all(_GRID @ eq[:, :2].T + eq[:, 2] <= 1e-9, axis=1)
    return float((inside & ~mask).sum() / inside.sum())


def convex_sets(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Half convex (label 1), half non-convex (label 0) white regions, each at least 40 pixels.

    The recipe of the first release, kept: the published one (convex regions of at least 19
    pixels; unions of 2–4 smaller parts of at least 10 pixels that fail any convexity test,
    pixel counts balanced between the classes) came out *easier* here — an RBF SVM: 11.6 %
    against 19.13 % published, while this recipe gives about 15 % (docs/data.md).
    """
    labels = rng.permutation(np.arange(n) % 2)
    out = np.zeros((n, SIDE * SIDE), dtype=bool)
    todo = np.flatnonzero(labels == 1)
    while len(todo):
        regions = _convex_regions(len(todo), rng)
        ok = regions.sum(1) >= 40
        out[todo[ok]] = regions[ok]
        todo = todo[~ok]
    todo = np.flatnonzero(labels == 0)
    while len(todo):
        parts = rng.integers(2, 4)
        union = np.zeros((len(todo), SIDE * SIDE), dtype=bool)
        for _ in range(parts):
            union |= _convex_regions(len(todo), rng) & (rng.random((len(todo), 1)) < 0.9)
        ok = np.array([u.sum() >= 40 and _nonconvexity(u) > 0.1 for u in union])
        out[todo[ok]] = union[ok]
        todo = todo[~ok]
    return out.reshape(n, SIDE, SIDE), labels.astype(np.int64)


def generate(
    name: str, digits: tuple[np.ndarray, np.ndarray] | None, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of the named set; MNIST-based sets draw from ``digits`` (float images, labels) in order."""
    if name.startswith("mnist"):
        x, y = digits
        x = x[:n]
        if "rot" in name:
            x = rotate(x, rng)
        if "bg-rand" in name:
            x = with_background(x, rng.uniform(0, 1, x.shape))
        if "bg-img" in name:
            x = with_background(x, image_patches(len(x), rng))
        return _to_uint8(x), y[:n].astype(np.int64)
    if name == "rect":
        masks, labels = rectangles(n, rng)
        return _to_uint8(masks.astype(np.float64)), labels
    if name == "rect-img":
        masks, labels = rectangles(n, rng, outline=False)
        fg, bg = image_patches(n, rng), image_patches(n, rng)
        return _to_uint8(np.where(masks, fg, bg)), labels
    if name == "convex":
        masks, labels = convex_sets(n, rng)
        return _to_uint8(masks.astype(np.float64)), labels
    raise KeyError(name)


#: name -> (train, valid, test) sizes of the original benchmarks
SIZES = {
    "mnist-basic": (10000, 2000, 50000),
    "mnist-rot": (10000, 2000, 50000),
    "mnist-bg-rand": (10000, 2000, 50000),
    "mnist-bg-img": (10000, 2000, 50000),
    "mnist-bg-img-rot": (10000, 2000, 50000),
    "rect": (1000, 200, 50000),
    "rect-img": (10000, 2000, 50000),
    "convex": (6000, 2000, 50000),
}
