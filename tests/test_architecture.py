"""The import graph of the package: no cycles, and imports flow from cli down to data."""

from __future__ import annotations

import ast
from pathlib import Path

import spatiomol

ROOT = Path(spatiomol.__file__).parent

#: stage → stages it may import (besides itself and the stage-free helpers hashing/atomic)
ALLOWED = {
    "data": set(),
    "models": {"data"},
    "evaluation": {"data", "models"},
    "nulls": {"data"},
    "experiments": {"data", "models", "evaluation", "nulls"},
    "reports": {"data", "models", "evaluation", "nulls", "experiments"},
    "explain": {"data", "models", "evaluation", "nulls", "experiments", "reports"},
    "cli": {"data", "models", "evaluation", "nulls", "experiments", "reports", "explain"},
}


def module_graph() -> dict[str, set[str]]:
    """Module → spatiomol modules it imports (``from pkg import submodule`` counts as the submodule)."""
    files = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(("spatiomol", *path.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")
        files[name] = path
    graph = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("spatiomol"):
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in files]
                deps.update(subs if len(subs) == len(node.names) else [node.module])
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("spatiomol"))
        graph[name] = {d for d in deps if d in files and d != name}
    return graph


def test_no_import_cycles():
    graph = module_graph()
    # the parser sees real edges (else the checks below would pass vacuously)
    assert "spatiomol.data.sources" in graph["spatiomol.experiments.runner"]
    assert "spatiomol.models.registry" in graph["spatiomol.evaluation.tuning"]
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_imports_flow_from_cli_down_to_data():
    wrong = []
    for module, deps in module_graph().items():
        parts = module.split(".")
        if len(parts) < 3 or parts[1] not in ALLOWED:
            continue
        stage = parts[1]
        for dep in deps:
            dep_stage = dep.split(".")[1] if dep.count(".") else None
            if dep_stage in ALLOWED and dep_stage != stage and dep_stage not in ALLOWED[stage]:
                wrong.append(f"{module} imports {dep}")
    assert wrong == []
