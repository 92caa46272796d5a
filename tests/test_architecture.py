"""The pipeline's never-rules, read from the source's imports (module level and inside functions):
data flows config -> corpus -> sampler -> trainer -> checkpoint -> evaluator -> rows -> table -> analysis."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "hybrid_sweep"

# package (folder under hybrid_sweep/) -> packages/modules it must never import
NEVER = {
    "evaluation": ("hybrid_sweep.training", "hybrid_sweep.runs", "hybrid_sweep.collect"),
    "data": ("hybrid_sweep.encoders", "hybrid_sweep.training"),
    "sampling": ("hybrid_sweep.encoders",),
    "training": ("hybrid_sweep.runs", "hybrid_sweep.collect"),
    "analysis": ("hybrid_sweep.training", "hybrid_sweep.encoders", "hybrid_sweep.runs", "hybrid_sweep.collect"),
    # the typed configs know no stage: they are read by every stage, so they import none of them (or the CLI)
    "config": ("hybrid_sweep.data", "hybrid_sweep.encoders", "hybrid_sweep.sampling", "hybrid_sweep.training",
               "hybrid_sweep.evaluation", "hybrid_sweep.runs", "hybrid_sweep.collect", "hybrid_sweep.analysis",
               "hybrid_sweep.cli", "hybrid_sweep.app"),
}


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")


def test_no_import_cycles_between_modules():
    """No two modules of the package import each other, directly or through others (function-level
    imports count: a cycle hidden inside a function still ties the two modules together)."""
    modules = {module_of(p): p for p in PKG.rglob("*.py")}
    edges = {m: {n for n in imports_of(p) if n in modules and n != m} for m, p in modules.items()}
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = "open"
        for n in sorted(edges[m]):
            if state.get(n) == "open":
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(modules):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def imports_of(path: Path) -> set[str]:
    """Every absolute module name a file imports (``from x import y`` gives x and x.y)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def violations(package: str) -> list[str]:
    banned = NEVER[package]
    found = []
    for path in sorted((PKG / package).rglob("*.py")):
        for name in sorted(imports_of(path)):
            if any(name == b or name.startswith(b + ".") for b in banned):
                found.append(f"{path.relative_to(PKG.parent)} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(NEVER))
def test_never_rules_hold(package):
    assert violations(package) == []


def test_the_reader_sees_imports_inside_functions(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import os\n\ndef f():\n    from hybrid_sweep.training import trainer\n    import hybrid_sweep.runs.store\n")
    assert {"hybrid_sweep.training", "hybrid_sweep.training.trainer", "hybrid_sweep.runs.store"} <= imports_of(src)
