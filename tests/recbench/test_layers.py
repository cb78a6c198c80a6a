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
