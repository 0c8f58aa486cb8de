"""The committed tutorials are what their builder writes (so a rebuild never silently changes them)."""

import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def test_notebooks_match_their_builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "notebooks" / "_build.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert set(builder.NOTEBOOKS) == {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    for name, cells in builder.NOTEBOOKS.items():
        book = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", 4)
        assert [c.source for c in book.cells] == [src for _, src in cells], name
        assert all(
            c.outputs or "NBVAL" in c.source for c in book.cells if c.cell_type == "code" and "print(" in c.source
        ), name
