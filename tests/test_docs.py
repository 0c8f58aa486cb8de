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


def test_the_plugin_guide_examples_pass_the_contract(monkeypatch):
    """docs/plugins.md's optimizer and executor walk-throughs are real code: each passes its checks."""
    import re
    import sys
    import types

    from aebench.testing import check_component

    text = (ROOT / "docs" / "plugins.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def aebench_" in b]
    found = {}
    for k, block in enumerate(blocks):
        module = types.ModuleType(f"plugin_guide_{k}")  # a module, so that its classes pickle
        monkeypatch.setitem(sys.modules, module.__name__, module)
        exec(compile(block, "docs/plugins.md", "exec"), module.__dict__)
        found.update({k: v for k, v in vars(module).items() if k in ("SignSGD", "Threads")})
    assert set(found) == {"SignSGD", "Threads"}
    for cls in found.values():
        check_component(cls)
