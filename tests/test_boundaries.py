"""The architecture's boundaries, checked on the source (every import, also inside functions).

- the engine never imports the built-ins, the UI, the CLI, sweeps or reports;
- the built-ins import only the public API (as a third party's plug-in would);
- the plug-ins in plugins/ import only aebench's public API;
- the UI and the CLI reach the engine only through Spec / run / the registry.
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
