"""The papers' protocols as spec files, shipped inside the package, and found by name.

``aebench run zhou2015-dae-reduced``, ``aebench.Spec.from_toml("zhou2015-dae-reduced")`` and
``Workbench("zhou2015-dae-reduced")`` load ``aebench/presets/zhou2015-dae-reduced.toml``
(a path that exists, relative to the current folder, is read first). The papers' published
tables are the CSV files in ``published/`` beside them, named by each spec's ``[[report]]``.

    from aebench import presets

    presets.names()                      # ['erhan2010-seeds', 'erhan2010-seeds-reduced', ...]
    presets.path("zhou2015-dae-reduced")  # the .toml file inside the installed package
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path

#: where the preset files are (inside the installed package)
FOLDER = Path(__file__).resolve().parent

#: measured wall-clock time of ``aebench run NAME`` as shipped, seconds, and where it was measured
#: (README "Reproducing the papers"); paper-scale presets are meant for GPUs and not measured yet
RUNTIMES: dict[str, tuple[float, str]] = {
    "erhan2010-seeds-reduced": (31, "2-core CPU VM, 2026-12-02"),
    "zhou2015-ae-l2-reduced": (74, "2-core CPU VM, 2026-12-02"),
    "zhou2015-cae-reduced": (344, "2-core CPU VM, 2026-12-02"),
    "zhou2015-dae-reduced": (428, "2-core CPU VM, 2026-12-02"),
}


@dataclass(frozen=True)
class Preset:
    """One shipped spec: its name, file, description, number of runs and measured runtime (None: not measured)."""

    name: str
    path: Path
    description: str
    runs: int
    seconds: float | None
    measured_on: str

    def runtime(self) -> str:
        """The runtime in words: ``7 min 8 s (2-core CPU VM, 2026-12-02)``, or that it is not measured."""
        if self.seconds is None:
            return "not measured (paper scale: meant for a GPU)"
        minutes, seconds = divmod(int(round(self.seconds)), 60)
        said = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        return f"{said} ({self.measured_on})"


def names() -> list[str]:
    """Every preset's name, sorted."""
    return sorted(p.stem for p in FOLDER.glob("*.toml"))


def path(name: str) -> Path | None:
    """The file of preset ``name`` (``zhou2015-dae-reduced``, with or without ``.toml``), or None."""
    stem = name.removesuffix(".toml")
    if "/" in stem or "\\" in stem or stem not in names():
        return None
    return FOLDER / f"{stem}.toml"


def close_to(name: str) -> list[str]:
    """Preset names close to ``name`` (a typo's suggestions)."""
    return difflib.get_close_matches(Path(name).stem, names(), n=2, cutoff=0.6)


def catalogue() -> list[Preset]:
    """Every preset with its description, its number of runs and its measured runtime."""
    from aebench.spec import sweep_points

    out = []
    for name in names():
        file = FOLDER / f"{name}.toml"
        raw = tomllib.loads(file.read_text())
        seeds = raw.get("seeds", [0])
        seconds, where = RUNTIMES.get(name, (None, ""))
        out.append(
            Preset(name, file, str(raw.get("description", "")), len(sweep_points(raw)) * len(seeds), seconds, where)
        )
    return out


__all__ = ["FOLDER", "RUNTIMES", "Preset", "catalogue", "close_to", "names", "path"]
