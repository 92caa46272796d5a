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
}


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
