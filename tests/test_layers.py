"""The package's layers, checked on the source: the engine imports nothing above it, and the modules' imports form
no cycle — counting imports inside functions, the usual way to hide one."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "chemomet"

ABOVE_THE_ENGINE = ("chemomet.population", "chemomet.assess", "chemomet.calibrate", "chemomet.trial", "chemomet.cli",
                    "chemomet.simulation", "chemomet.excess_risk")
"""Modules (and packages) the engine must not import; the package root is checked separately."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(module: str) -> dict[str, int]:
    """The chemomet modules ``module`` imports anywhere in its file (top level or inside functions), with the line
    of the first import of each. ``from pkg import name`` counts as an import of ``pkg.name`` when that is a
    module, else of ``pkg``; ``importlib.import_module("...")`` with a literal name counts too."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: dict[str, int] = {}

    def add(name: str, line: int) -> None:
        if name.split(".")[0] == "chemomet":
            found.setdefault(name, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path.name == "__init__.py", node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in MODULES else base, node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            add(node.args[0].value, node.lineno)
    found.pop(module, None)
    return found


def test_every_import_resolves_to_a_module_of_the_package():
    unknown = [(m, t) for m in MODULES for t in imports_of(m) if t not in MODULES]
    assert unknown == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("chemomet.model")))
def test_the_engine_imports_nothing_above_it(module):
    above = {
        target: line
        for target, line in imports_of(module).items()
        if target == "chemomet" or any(target == a or target.startswith(a + ".") for a in ABOVE_THE_ENGINE)
    }
    assert above == {}, f"{module} imports upward: {above}"


def test_no_import_cycles_including_function_level_imports():
    graph = {m: set(imports_of(m)) for m in MODULES}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as err:
        pytest.fail(f"import cycle: {' -> '.join(err.args[1])}")


def test_the_check_sees_a_cycle_hidden_in_a_function(tmp_path):
    """The cycle finder itself: two modules that import each other, one of them inside a function."""
    graph = {"a": {"b"}, "b": {"a"}}
    with pytest.raises(CycleError):
        tuple(TopologicalSorter(graph).static_order())
    source = "def f():\n    from chemomet.population import Population\n"
    tree = ast.parse(source)
    assert any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))
