"""The layering rule of docs/CONTRACTS.md ("Layers"), checked on the source: the import graph of
the project packages (every ``import`` statement, module level and inside functions) has no
cycle, the lower layers never import the orchestration layer, and ``benchmark`` never imports a
strategy package."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "evaluators", "leaderboard", "baselines", "methods", "harness")
# the folders in the order data flows (docs/CONTRACTS.md, "Layers"): a module imports its own
# layer and the layers below it, never one above.  ``harness`` (the run config, stages, runner,
# sweep, floor, bench and the CLI) orchestrates all the others.
LAYERS = {"benchmark": 0, "baselines": 1, "methods": 1, "evaluators": 2, "leaderboard": 3,
          "harness": 4}
ORCHESTRATION = ("harness",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _resolve(name: str, known: set[str]) -> str | None:
    """The project module that ``name`` (a dotted import target) loads, or None (third party)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (annotations only: never imported
    at run time)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``module`` imports anywhere in its file (also inside functions; relative
    imports resolved; ``from pkg import sub`` counts as an import of ``pkg.sub`` when it is a
    module, else of ``pkg``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, known)
                if target:
                    out.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                target = _resolve(f"{origin}.{alias.name}", known)
                if target == _resolve(origin, known) or target is None:
                    target = _resolve(origin, known)
                if target:
                    out.add(target)
    out.discard(module)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _under(module: str, roots) -> bool:
    return any(module == r or module.startswith(r + ".") for r in roots)


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    # harness.sweep imports harness.runner inside functions only
    assert "harness.runner" in graph["harness.sweep"]
    assert "benchmark.strategy.registry" in graph["harness.sweep"]
    assert len(graph) > 50


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles between project modules: " + "; ".join(
        " <-> ".join(c) for c in cycles)


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def test_folders_import_one_way():
    """No module imports a folder above its own: benchmark -> strategies -> evaluators ->
    leaderboard -> harness."""
    bad = sorted((m, t) for m, ts in import_graph().items() for t in ts if _layer(t) > _layer(m))
    assert not bad, "imports up the layers (move the code down, or pass it in): " + "; ".join(
        f"{m} -> {t}" for m, t in bad)


def test_lower_layers_never_import_the_orchestration_layer():
    bad = [(m, t) for m, ts in import_graph().items() if not _under(m, ORCHESTRATION)
           for t in ts if _under(t, ORCHESTRATION)]
    assert not bad, f"foundation/strategy/evaluator/leaderboard modules import the harness: {bad}"




def test_strategy_config_and_cl_plugins_import_one_way():
    """config -> plugins -> fields: the CL plugins (and their registry) never import the strategy
    config, registry or base, so the config may validate ``--with`` against the plugin registry
    without an import circle."""
    graph = import_graph()
    assert "benchmark.strategy.plugins" in graph["benchmark.strategy.config"]
    assert "benchmark.strategy.fields" in graph["benchmark.strategy.plugins"]
    assert not graph["benchmark.strategy.plugins"] & {
        "benchmark.strategy.config", "benchmark.strategy.registry", "benchmark.strategy.base"}
