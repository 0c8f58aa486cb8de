"""The architecture's boundaries, checked on the source (every import, also inside functions).

- the engine never imports the built-ins, the UI, the CLI, sweeps or reports;
- the built-ins import only the public API (as a third party's plug-in would);
- the plug-ins in plugins/ import only aebench's public API;
- the UI and the CLI reach the engine only through Spec / run / the registry;
- the data package never imports the engine;
- no two modules of aebench import each other, directly or through others (module-level
  imports, ``if TYPE_CHECKING:`` blocks and packages' ``__init__`` included; imports inside
  functions are deferred).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

import aebench

PUBLIC = {
    "aebench",
    "aebench.components",
    "aebench.context",
    "aebench.models",
    "aebench.functional",
    "aebench.hookspecs",
    "aebench.testing",
    "aebench.training",
    "aebench.tables",
    "aebench.errors",
    "aebench.options",
    "aebench.plots",
    "aebench.data",
    "aebench.data.amat",
    "aebench.data.cache",
    "aebench.data.variations",
    "aebench.evaluate",
    "aebench.evaluate.chain",
    "aebench.evaluate.stats",
    "aebench.evaluate.select",
    "aebench.evaluate.search",
    "aebench.evaluate.flags",
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "aebench":  # `from aebench import X`: X must be in aebench.__all__
                found |= {f"aebench:{a.name}" for a in node.names}
    return {m for m in found if m == "aebench" or m.startswith(("aebench.", "aebench:"))}


def modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


RULES = [
    ("aebench/engine", ("aebench.builtin", "aebench.ui", "aebench.cli", "aebench.execution", "aebench.report")),
    ("aebench/builtin", ("aebench.ui", "aebench.cli", "aebench.execution", "aebench.report")),
    ("aebench/ui", ("aebench.engine", "aebench.builtin", "aebench.cli")),
    ("aebench/data", ("aebench.engine", "aebench.execution", "aebench.builtin")),
]


@pytest.mark.parametrize("folder, forbidden", RULES, ids=[r[0] for r in RULES])
def test_layer_does_not_reach_past_its_boundary(folder, forbidden):
    bad = {
        f"{path.relative_to(ROOT)} imports {m}"
        for path in modules(ROOT / folder)
        for m in imports(path)
        if m.startswith(forbidden)
    }
    assert not bad, sorted(bad)


def test_cli_reaches_training_only_through_spec_run_and_registry():
    bad = {m for m in imports(ROOT / "aebench" / "cli.py") if m.startswith("aebench.engine")}
    assert not bad, sorted(bad)


@pytest.mark.parametrize("folder", ["plugins", "aebench/builtin"])
def test_plugins_and_builtins_use_only_the_public_api(folder):
    own = folder.replace("/", ".")  # a package may import its own modules (the built-in finetune schedule)
    bad = {
        f"{path.relative_to(ROOT)} imports {m}"
        for path in modules(ROOT / folder)
        for m in imports(path)
        if m not in PUBLIC
        and not m.startswith(own)
        and not (m.startswith("aebench:") and m.split(":")[1] in aebench.__all__)
    }
    assert not bad, sorted(bad)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from aebench.builtin.models import Stacked\n    import aebench.ui\n")
    assert {"aebench.builtin.models", "aebench.ui"} <= imports(probe)


def top_level_imports(path: Path, known: set[str] | None = None) -> set[str]:
    """aebench modules imported when ``path`` is imported (or type-checked): not inside functions.

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module (of ``known``), else
    to ``pkg`` itself: its ``__init__`` must have run to hand the name over. So ``from aebench
    import __version__`` inside a module that ``aebench/__init__`` imports is a cycle."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names}
                modules = subs if known is None else subs & known
                found.update(modules)
                if known is None or modules != subs:  # a name defined by the package's __init__
                    found.add(node.module)
            visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return found


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the aebench modules it imports at module level, packages' ``__init__`` included."""
    paths = modules(ROOT / "aebench")
    names = {module_name(p) for p in paths}
    return {module_name(p): {m for m in top_level_imports(p, names) if m in names} - {module_name(p)} for p in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, through packages' ``__init__`` too (``aebench/__init__`` imports
    ``aebench.execution``, which must not import ``aebench`` back)."""
    found, state = [], {}

    def walk(m: str, path: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                found.append(path[path.index(n) :] + [n])
            elif n not in state:
                walk(n, path + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            walk(m, [m])
    return found


def test_no_import_cycle_between_modules():
    assert not cycles(import_graph())


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_the_cycle_check_sees_a_package_init(tmp_path):
    """The cycle issue 26 found: the package's __init__ imports a subpackage whose module imports
    the package back (for ``__version__``); importing a submodule by name is no edge to the package."""
    pkg = tmp_path / "aebench"
    (pkg / "execution").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from aebench.execution import run\n__version__ = '1'\n")
    (pkg / "execution" / "__init__.py").write_text("from aebench.execution.api import run\n")
    (pkg / "execution" / "api.py").write_text("import aebench\nfrom aebench import hooks\n")
    (pkg / "hooks.py").write_text("")
    known = {"aebench", "aebench.execution", "aebench.execution.api", "aebench.hooks"}
    graph = {
        "aebench": top_level_imports(pkg / "__init__.py", known) & known,
        "aebench.execution": top_level_imports(pkg / "execution" / "__init__.py", known) & known,
        "aebench.execution.api": top_level_imports(pkg / "execution" / "api.py", known) & known,
        "aebench.hooks": set(),
    }
    assert graph["aebench.execution.api"] == {"aebench", "aebench.hooks"}
    assert cycles(graph) == [["aebench", "aebench.execution", "aebench.execution.api", "aebench"]]
