"""The import graph of the package: no cycles, and imports flow from cli down to data; and
only `ResultsStore` (experiments/store.py) joins paths under a results folder."""

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
    assert "spatiomol.data.sources" in graph["spatiomol.experiments.inputs"]
    assert "spatiomol.experiments.execute" in graph["spatiomol.experiments.runner"]
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


# ------------------------------------------------------------ results-folder paths
#: entries of a results folder (`spatiomol.experiments.store`); joining one onto a path is the store's job
FOLDER_NAMES = {
    "parts",
    "predictions",
    "models",
    "regions",
    "nulls",
    "splits",
    "failures",
    "claims",
    "explain",
    "manifest.json",
}
#: the one module that builds paths under a results folder
STORE = "experiments/store.py"


def _is_root(node: ast.AST) -> bool:
    """``<anything>.root`` (a store's folder) or an expression naming a results folder."""
    if isinstance(node, ast.Attribute) and node.attr == "root":
        return True
    return any(isinstance(n, ast.Name) and n.id in ("results_dir", "results") for n in ast.walk(node))


def _is_folder_name(node: ast.AST) -> bool:
    """A string constant (or an f-string's first part) naming a results-folder entry."""
    if isinstance(node, ast.JoinedStr) and node.values:
        node = node.values[0]
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return False
    return node.value in FOLDER_NAMES or node.value.split("/")[0] in FOLDER_NAMES


def results_path_joins(source: str) -> list[str]:
    """Path joins under a results folder in ``source``: ``root / x``, ``p / "parts"``,
    ``os.path.join(root, ...)``, ``p.joinpath("nulls", ...)``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left = node.left
            while isinstance(left, ast.BinOp) and isinstance(left.op, ast.Div):
                left = left.left
            if _is_root(left) or _is_folder_name(node.right):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name == "os.path.join" or name.endswith(".joinpath"):
                operands = [*node.args, node.func.value] if name.endswith(".joinpath") else node.args
                if any(_is_root(a) or _is_folder_name(a) for a in operands):
                    found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_path_check_sees_joins():
    joins = results_path_joins(
        "a = ctx.store.root / 'failures'\n"
        "b = out / 'predictions' / f'{rid}.npz'\n"
        "c = Path(results_dir) / 'x'\n"
        "d = os.path.join(store.root, 'manifest.json')\n"
        "e = folder.joinpath('nulls')\n"
        "f = store.root / f'explain/{name}'\n"
        "g = out / 'tables' / 'summary.csv'\n"  # the report's own folder: not the store's
    )
    assert sorted({int(j.split(":")[0]) for j in joins}) == [1, 2, 3, 4, 5, 6]


def test_only_the_store_joins_results_folder_paths():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel != STORE:
            wrong += [f"{rel}:{join}" for join in results_path_joins(path.read_text())]
    assert wrong == []
