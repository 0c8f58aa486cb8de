"""Pre-flight: what is checked before anything is written, here and on every worker of a cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aebench.errors import SpecError
from aebench.plugins import registry
from aebench.spec import Spec


def preflight(spec: Spec, rows: dict[str, list[dict[str, int]]] | None = None) -> dict[str, dict[str, str]]:
    """Load every data set once and check the runs can start: raises before anything is written.

    Returns the data checksums; ``rows``, when given, receives each data set's split sizes
    as the runs will see them (a report's protocol note is written from them).
    """
    reg = registry()
    checksums: dict[str, dict[str, str]] = {}
    seen: dict[str, Any] = {}
    for run in spec.runs:
        key = run.data.name + run.data.params.model_dump_json()
        if key not in seen:
            seen[key] = run.data.build(reg).load()
        data = seen[key]
        checksums[data.name] = data.checksums
        if rows is not None:
            sizes = {split: len(getattr(data, split).y) for split in ("train", "valid", "test")}
            if sizes not in rows.setdefault(run.data.name, []):
                rows[run.data.name].append(sizes)
        loss = getattr(run.model.params, "loss", None)
        if loss == "cross-entropy":
            hi = float(data.train.x.max()) * data.scale
            lo = float(data.train.x.min()) * data.scale
            if hi > 1 + 1e-6 or lo < -1e-6:
                raise SpecError(
                    f"model.loss = 'cross-entropy' needs inputs in [0, 1], but data {data.name!r} spans "
                    f"[{lo:g}, {hi:g}]; normalise the data or use loss = 'squared-error'."
                )
        n_layers = len(getattr(run.model.params, "layers", [])) or 1
        if not any(sched.build(reg).stages(n_layers) for sched in run.schedules):
            names = ", ".join(s.name for s in run.schedules)
            raise SpecError(f"schedule ({names}) has no stage to train in run {run.run_id} ({run.point}).")
    return checksums


def components_named(spec: Spec) -> list[tuple[str, str]]:
    """Every (kind, name) of plug-in component the spec's runs use."""
    found: dict[tuple[str, str], None] = {}
    for run in spec.runs:
        for c in (
            run.data,
            run.model,
            *run.corruptions,
            *run.regularizers,
            *run.schedules,
            run.optimizer,
            *run.evaluators,
            *run.callbacks,
        ):
            found[(c.kind, c.name)] = None
    return list(found)


def datasets_named(spec: Spec) -> dict[str, tuple[str, str]]:
    """Every data set of the spec: its key (as the runs look it up) -> (name, its Params as JSON)."""
    return {
        r.data.name + r.data.params.model_dump_json(): (r.data.name, r.data.params.model_dump_json()) for r in spec.runs
    }


def worker_facts(components: list[tuple[str, str]], datasets: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Run on each worker: its aebench version, the named plug-ins it lacks, the checksums of
    the data it loads (generated or downloaded into its own cache when absent)."""
    import aebench
    from aebench.errors import AebenchError

    reg = registry()
    missing = []
    for kind, name in components:
        try:
            reg.get(kind, name)
        except AebenchError:
            missing.append(f"{kind} {name!r}")
    sums: dict[str, Any] = {}
    if not missing:
        for key, (name, params) in datasets.items():
            cls = reg.get("dataset", name)
            try:
                sums[key] = cls(cls.Params.model_validate_json(params)).load().checksums
            except Exception as exc:  # the client sends it (or says why not), naming this worker
                sums[key] = f"cannot be loaded here ({type(exc).__name__}: {exc})"
    return {"version": aebench.__version__, "missing": missing, "checksums": sums}


def check_workers(
    facts: dict[str, dict[str, Any]], data: dict[str, Any], send: Callable[[str, str, Any], None] | None = None
) -> None:
    """Refuse a cluster whose workers cannot run the spec: a clear error naming the worker.

    ``data``: the spec's data sets as this client loaded them (by key); a worker that cannot
    load one gets it through ``send(worker, key, data)`` (with a warning), one that loads
    different data is an error."""
    import warnings

    import aebench
    from aebench.errors import AebenchError

    if not facts:
        raise AebenchError("the dask cluster has no workers; start some (dask worker ADDRESS) and run again.")
    for addr, f in sorted(facts.items()):
        if f["version"] != aebench.__version__:
            raise AebenchError(
                f"worker {addr} runs aebench {f['version']}, this client {aebench.__version__}: install the same "
                "version on every worker."
            )
        if f["missing"]:
            raise AebenchError(
                f"worker {addr} lacks the plug-in{'s' if len(f['missing']) > 1 else ''} the spec names: "
                f"{', '.join(f['missing'])}; install {'them' if len(f['missing']) > 1 else 'it'} on every worker "
                "(pip install the distribution that provides it)."
            )
        for key, sums in f["checksums"].items():
            mine = data[key]
            if isinstance(sums, str) and send is not None:
                warnings.warn(f"data set {mine.name!r} {sums} on worker {addr}: sent from this machine.", stacklevel=2)
                send(addr, key, mine)
            elif sums != mine.checksums:
                what = sums if isinstance(sums, str) else "differs from this machine's (checksums differ)"
                raise AebenchError(
                    f"data set {mine.name!r} on worker {addr} {what}; give every worker the same data "
                    "(the same AEBENCH_DATA contents, or let each generate or download it)."
                )
