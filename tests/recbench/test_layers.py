"""The three layers import downwards only: the core (``recbench`` itself, ``recbench.data``,
``recbench.nn``) never imports the protocol (``recbench.protocol``) or the reporting
(``recbench.reporting``), and the protocol never imports the reporting. A static check of every
import statement, function-level imports included, so it holds whatever is loaded first."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "recbench"
LAYERS = {"core": 0, "protocol": 1, "reporting": 2}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("protocol", "reporting") else "core"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str) -> set[str]:
    """Every recbench module ``source`` imports (``from recbench.x import y`` counts as
    ``recbench.x.y`` when that is a module, so ``from recbench import protocol`` is seen)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("recbench")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("recbench"):
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


def upward_imports(sources: dict[str, str]) -> list[str]:
    """'module (layer) imports other (layer)' for each import of a higher layer."""
    return sorted(f"{name} ({layer(name)}) imports {m} ({layer(m)})"
                  for name, source in sources.items() for m in imports(source)
                  if LAYERS[layer(m)] > LAYERS[layer(name)])


def test_no_layer_imports_a_layer_above_it():
    sources = {module_name(p): p.read_text() for p in sorted(ROOT.rglob("*.py"))}
    assert len(sources) > 40 and upward_imports(sources) == []


def test_the_check_sees_an_upward_import():
    """A core module importing the protocol, even inside a function, is reported."""
    source = (ROOT / "metrics.py").read_text() + (
        "\n\ndef _f():\n    from recbench.protocol import stats\n")
    assert upward_imports({"recbench.metrics": source}) == [
        "recbench.metrics (core) imports recbench.protocol (protocol)",
        "recbench.metrics (core) imports recbench.protocol.stats (protocol)"]


@pytest.mark.parametrize("package", ["protocol", "reporting"])
def test_each_layer_is_a_package(package):
    assert (ROOT / package / "__init__.py").is_file()


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """module -> the recbench modules it imports (packages resolved to their __init__)."""
    return {name: {m for m in imports(source) if m in sources and m != name}
            for name, source in sources.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    """No two modules import each other, directly or round a loop, even inside functions
    (the registry imports model modules by name, at run time, so it is never in a loop)."""
    sources = {module_name(p): p.read_text() for p in sorted(ROOT.rglob("*.py"))}
    assert cycles(import_graph(sources)) == []


def test_the_circle_check_sees_a_function_level_loop():
    sources = {"recbench.a": "from recbench.b import x\n",
               "recbench.b": "def f():\n    from recbench import a\n"}
    assert cycles(import_graph(sources)) == [["recbench.a", "recbench.b"]]
