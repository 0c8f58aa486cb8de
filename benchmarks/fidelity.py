"""Data fidelity (`make bench`): are aebench's regenerated variation sets as hard as the originals?

Larochelle et al. (ICML 2007) published the test error of an RBF-kernel SVM on each set,
with C and γ chosen on the validation split and the model retrained on train + valid.
This script runs that protocol on the sets aebench generates and prints measured vs
published error and their ratio (target: 0.8–1.25). Results go to
benchmarks/results/fidelity.json. Never run from the tests (a full run takes tens of
minutes on two cores; ``--test 50000`` for the original test size).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

HERE = Path(__file__).parent

#: SVM_rbf test error (%) in Larochelle et al. (2007), Table 1
PUBLISHED = {
    "mnist-basic": 3.03,
    "mnist-rot": 11.11,
    "mnist-bg-rand": 14.58,
    "mnist-bg-img": 22.61,
    "mnist-bg-img-rot": 55.18,
    "rect": 2.15,
    "rect-img": 24.04,
    "convex": 19.13,
}
C_GRID = (1.0, 10.0, 100.0)
GAMMA_FACTORS = (0.5, 1.0, 2.0, 4.0, 8.0)  # × the "scale" heuristic 1 / (features · Var x)


def _fit_error(C: float, gamma: float, train, valid) -> float:
    from sklearn.svm import SVC

    clf = SVC(C=C, gamma=gamma, kernel="rbf", cache_size=2000).fit(*train)
    return float((clf.predict(valid[0]) != valid[1]).mean())


def rbf_svm_error(name: str, seed: int = 0, n_train: int | None = None, n_test: int = 10000, jobs: int = 2) -> dict:
    """The paper's protocol on one generated set: (C, γ) on validation, refit on train + valid, test error."""
    from sklearn.svm import SVC

    from aebench.builtin.datasets import make_variation

    arrays, digest, _ = make_variation(name, seed)
    x = {s: arrays[f"{s}_x"].astype(np.float32) / 255 for s in ("train", "valid", "test")}
    y = {s: arrays[f"{s}_y"] for s in ("train", "valid", "test")}
    n_train = n_train or len(y["train"])
    train, valid = (x["train"][:n_train], y["train"][:n_train]), (x["valid"], y["valid"])
    scale = 1.0 / (train[0].shape[1] * train[0].var())
    grid = list(itertools.product(C_GRID, [f * scale for f in GAMMA_FACTORS]))
    t0 = time.perf_counter()
    errs = Parallel(n_jobs=jobs)(delayed(_fit_error)(C, g, train, valid) for C, g in grid)
    C, gamma = grid[int(np.argmin(errs))]
    both = (np.concatenate([train[0], valid[0]]), np.concatenate([train[1], valid[1]]))
    clf = SVC(C=C, gamma=gamma, kernel="rbf", cache_size=2000).fit(*both)
    tx, ty = x["test"][:n_test], y["test"][:n_test]
    pred = np.concatenate(Parallel(n_jobs=jobs)(delayed(clf.predict)(part) for part in np.array_split(tx, 2 * jobs)))
    err = float((pred != ty).mean())
    measured = 100 * err
    return {
        "set": name,
        "measured": measured,
        "ci": 196 * math.sqrt(err * (1 - err) / len(ty)),
        "published": PUBLISHED[name],
        "ratio": measured / PUBLISHED[name],
        "C": C,
        "gamma_over_scale": gamma / scale,
        "valid_error": 100 * min(errs),
        "n_train": n_train,
        "n_test": len(ty),
        "seconds": time.perf_counter() - t0,
        "checksum": digest,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", nargs="*", default=list(PUBLISHED), choices=list(PUBLISHED))
    ap.add_argument("--train", type=int, default=None, help="training rows (default: the whole split)")
    ap.add_argument("--test", type=int, default=10000, help="test rows (the original: 50000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    rows = []
    print(f"{'set':>17} {'measured %':>14} {'published %':>12} {'ratio':>6}  target 0.8-1.25")
    for name in args.sets:
        r = rbf_svm_error(name, args.seed, args.train, args.test, args.jobs)
        ok = "ok" if 0.8 <= r["ratio"] <= 1.25 else "OUT"
        print(
            f"{name:>17} {r['measured']:8.2f} ± {r['ci']:4.2f} {r['published']:12.2f} {r['ratio']:6.2f}  {ok}"
            f"  (C={r['C']:g}, γ={r['gamma_over_scale']:g}×scale, {r['seconds']:.0f} s)",
            flush=True,
        )
        rows.append(r)
        if not args.no_save:  # after every set: a long run that is stopped keeps what it measured
            save(r)


def save(row: dict) -> None:
    """Replace this set's row in benchmarks/results/fidelity.json (other sets' rows are kept)."""
    out = HERE / "results" / "fidelity.json"
    old = json.loads(out.read_text()) if out.is_file() else {}
    rows = {r["set"]: r for r in old.get("rows", [])}
    rows[row["set"]] = {**row, "measured_at": time.strftime("%Y-%m-%d %H:%M")}
    order = [n for n in PUBLISHED if n in rows]
    doc = {
        "protocol": "RBF SVM; C in %s, gamma in %s x 1/(784 Var x) chosen on validation; refit on train+valid"
        % (list(C_GRID), list(GAMMA_FACTORS)),
        "rows": [rows[n] for n in order],
    }
    out.write_text(json.dumps(doc, indent=2, default=float))


if __name__ == "__main__":
    main()
