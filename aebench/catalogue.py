"""The catalogue of launches: every results folder under a root, what it ran, how it went, and its notes.

A *launch* is one output folder of ``aebench run`` or the Workbench (``--out DIR``, or
``aebench-runs/<name>-N``): it holds ``spec.toml`` and ``runs/``. The catalogue reads only
small files (``spec.toml``, each ``runs/<id>/status.json``, ``.lock`` and ``notes.json``),
never a netCDF file, so listing hundreds of launches stays quick, also while they run.

``DIR/notes.json`` (:data:`NOTES_FILE`) holds the user's note and tags, written atomically;
it is one of the files aebench keeps under ``--out`` (:mod:`aebench.outdir`).

    from aebench import catalogue

    for launch in catalogue.launches("aebench-runs"):
        print(launch.name, launch.done, launch.failed, launch.tags)
    catalogue.tag("aebench-runs/dae-3", add=["baseline"], note="lr 0.01, the paper's")
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aebench.atomic import write_json
from aebench.errors import ResultsError
from aebench.outdir import NOTES_FILE, check_own, held

#: folders never searched for launches (and a launch's own sub-folders)
SKIP = {".git", ".venv", "node_modules", "__pycache__", ".ipynb_checkpoints", "runs", "report_files"}
#: spec keys that name or describe an experiment without changing what it runs (left out of the fingerprint)
NOT_FINGERPRINTED = ("name", "description")
#: the longest note kept (a note is a sentence or a paragraph, not a file)
MAX_NOTE = 10_000


@dataclass(frozen=True)
class Notes:
    """A launch's note (free text) and tags (short words, in the order they were added)."""

    note: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Launch:
    """One results folder, as the catalogue sees it.

    ``runs`` is the number of runs its spec makes; ``done``, ``failed``, ``interrupted``,
    ``running`` and ``not_started`` count them by their ``status.json`` (a run marked
    ``running`` in a folder that no process holds is counted as interrupted: its process
    was killed). ``active`` is whether an aebench process holds the folder's lock now.
    ``started`` / ``updated`` are the first run's start and the last recorded change (ISO
    8601, UTC; the spec file's time when no run started). ``fingerprint`` is a short hash
    of the spec without its ``name`` and ``description``: two launches with one fingerprint
    ran the same experiment.
    """

    path: Path
    name: str
    started: str
    updated: str
    runs: int
    done: int
    failed: int
    interrupted: int
    running: int
    not_started: int
    sweep: tuple[str, ...]
    seeds: tuple[int, ...]
    fingerprint: str
    active: bool
    note: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``aebench ls --json``): ``path`` as text, tuples as lists."""
        out = asdict(self)
        out.update(path=str(self.path), sweep=list(self.sweep), seeds=list(self.seeds), tags=list(self.tags))
        return out


# ------------------------------------------------------------------------- notes
def notes(path: str | Path) -> Notes:
    """The note and tags of the launch at ``path`` (empty when it has none or they cannot be read)."""
    file = Path(path) / NOTES_FILE
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return Notes()
    if not isinstance(data, dict):
        return Notes()
    note = data.get("note", "")
    tags = data.get("tags", [])
    return Notes(
        note if isinstance(note, str) else "",
        tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
    )


def tag(
    path: str | Path,
    add: list[str] | tuple[str, ...] = (),
    remove: list[str] | tuple[str, ...] = (),
    note: str | None = None,
) -> Notes:
    """Add and remove tags of the launch at ``path`` and, unless ``note`` is None, replace its note.

    Tags are words without spaces or commas (``baseline``, ``lr-sweep``); adding one it has
    is no change, removing one it lacks is no change. Returns the launch's notes as written
    to ``path/notes.json``. Raises :class:`aebench.ResultsError` when ``path`` is not a
    launch (no ``spec.toml``) or a tag or the note is unusable.
    """
    path = Path(path)
    require_launch(path)
    for t in (*add, *remove):
        _check_tag(t)
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise ResultsError(f"a note must be text of at most {MAX_NOTE} characters.")
    old = notes(path)
    gone = set(remove)
    tags = [t for t in old.tags if t not in gone]
    tags += [t for t in dict.fromkeys(add) if t not in tags and t not in gone]
    new = Notes(old.note if note is None else note.strip(), tuple(tags))
    check_own(path, path / NOTES_FILE)  # a link or a folder there: refused, never followed
    write_json(path / NOTES_FILE, {"note": new.note, "tags": list(new.tags)})
    return new


def _check_tag(t: Any) -> None:
    if not isinstance(t, str) or not t or len(t) > 64 or any(c.isspace() or c == "," for c in t):
        raise ResultsError(f"tag {t!r}: a tag is one word of at most 64 characters, without spaces or commas.")


def require_launch(path: Path) -> None:
    """Refuse (``ResultsError``, with what to do) a path that is not a results folder."""
    if not (path / "spec.toml").is_file():
        if path.suffix == ".toml" and path.is_file():
            raise ResultsError(f"{path} is a spec file, not a results folder: run it first (aebench run).")
        raise ResultsError(f"{path} is not a results folder (it has no spec.toml): name a folder that aebench wrote.")


# --------------------------------------------------------------------- launches
def is_launch(path: str | Path) -> bool:
    """Whether ``path`` is a results folder: it holds ``spec.toml`` and ``runs/`` or ``results.nc``."""
    path = Path(path)
    return (path / "spec.toml").is_file() and ((path / "runs").is_dir() or (path / "results.nc").is_file())


def launches(root: str | Path = ".", tags: list[str] | tuple[str, ...] = (), max_depth: int = 6) -> list[Launch]:
    """Every launch below ``root`` (``root`` itself included), oldest first.

    Folders that are not launches are searched down to ``max_depth`` levels; a launch's own
    sub-folders, hidden folders and virtual environments are not. With ``tags``, only the
    launches that carry every one of them. Unreadable folders are passed over.
    """
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(f"{root} is not a folder.")
    found: list[Launch] = []
    for folder in _walk(root, max_depth):
        try:
            launch = info(folder)
        except (ResultsError, OSError):
            continue
        if all(t in launch.tags for t in tags):
            found.append(launch)
    return sorted(found, key=lambda x: (x.started, str(x.path)))


def _walk(root: Path, max_depth: int):
    if is_launch(root):
        yield root
        return
    if max_depth <= 0:
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return
    for child in children:
        if child.name in SKIP or child.name.startswith("."):
            continue
        yield from _walk(child, max_depth - 1)


def info(path: str | Path) -> Launch:
    """What the launch at ``path`` ran and how it went (see :class:`Launch`)."""
    from aebench.spec import sweep_keys, sweep_points

    path = Path(path)
    require_launch(path)
    spec_file = path / "spec.toml"
    try:
        raw = tomllib.loads(spec_file.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ResultsError(f"{spec_file} cannot be read ({exc}).") from None
    seeds = raw.get("seeds", [0])
    seeds = tuple(s for s in seeds if isinstance(s, int)) if isinstance(seeds, list) else (0,)
    try:
        total = len(sweep_points(raw, str(spec_file))) * len(seeds)
    except Exception:  # a spec this version cannot expand: count what is on disk
        total = 0
    active = held(path)
    counts = {"done": 0, "failed": 0, "interrupted": 0, "running": 0}
    times: list[str] = []
    runs = path / "runs"
    statuses = sorted(runs.glob("*/status.json")) if runs.is_dir() else []
    for file in statuses:
        try:
            st = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        status = st.get("status") if isinstance(st, dict) else None
        if status == "running" and not active:
            status = "interrupted"  # its process is gone
        counts[status if status in counts else "failed"] += 1
        times += [t for t in (st.get("started"), st.get("finished")) if isinstance(t, str)]
    seen = sum(counts.values())
    total = max(total, seen)
    stamp = _mtime(spec_file)
    n = notes(path)
    return Launch(
        path=path,
        name=str(raw.get("name", path.name)),
        started=min(times, default=stamp),
        updated=max(times, default=stamp),
        runs=total,
        not_started=total - seen,
        sweep=tuple(sweep_keys(raw)),
        seeds=seeds,
        fingerprint=fingerprint(raw),
        active=active,
        note=n.note,
        tags=n.tags,
        **counts,
    )


def fingerprint(raw: dict[str, Any]) -> str:
    """A short hash of a spec (its TOML tables) without ``name`` and ``description``: equal for launches of
    one experiment, whatever they were called."""
    body = {k: v for k, v in raw.items() if k not in NOT_FINGERPRINTED}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _mtime(path: Path) -> str:
    import datetime as dt

    try:
        t = path.stat().st_mtime
    except OSError:
        return ""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")


def table(found: list[Launch], root: str | Path = ".") -> list[str]:
    """``aebench ls`` lines: one per launch (path below ``root``, when, runs, sweep keys, fingerprint, tags)."""
    root = Path(root)
    header = ["launch", "started (UTC)", "done", "failed", "interr.", "left", "sweep", "spec", "tags / note"]
    rows = []
    for x in found:
        try:
            where = str(x.path.relative_to(root)) if x.path != root else str(x.path)
        except ValueError:
            where = str(x.path)
        left = x.not_started + x.running
        said = " ".join(f"#{t}" for t in x.tags)
        note = x.note.splitlines()[0] if x.note else ""
        said = f"{said} {note[:50] + ('…' if len(note) > 50 else '')}".strip()
        rows.append(
            [
                where + (" (running)" if x.active else ""),
                x.started.replace("T", " ")[:16],
                str(x.done),
                str(x.failed),
                str(x.interrupted),
                str(left),
                ", ".join(x.sweep) or "-",
                x.fingerprint,
                said,
            ]
        )
    widths = [max(len(c) for c in col) for col in zip(header, *rows)]
    numeric = {2, 3, 4, 5}
    return [
        "  ".join(c.rjust(w) if k in numeric else c.ljust(w) for k, (c, w) in enumerate(zip(line, widths))).rstrip()
        for line in (header, *rows)
    ]


__all__ = [
    "Launch",
    "NOTES_FILE",
    "Notes",
    "fingerprint",
    "info",
    "is_launch",
    "launches",
    "notes",
    "require_launch",
    "tag",
    "table",
]
