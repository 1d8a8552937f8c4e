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


def imports_in(source: str, module: str, is_package: bool = False) -> dict[str, int]:
    """The chemomet modules imported anywhere in ``source`` (top level or inside functions), with the line of the
    first import of each. ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module, else
    of ``pkg``; ``importlib.import_module("...")`` with a literal name counts too."""
    found: dict[str, int] = {}

    def add(name: str, line: int) -> None:
        if name.split(".")[0] == "chemomet":
            found.setdefault(name, line)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
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


def imports_of(module: str) -> dict[str, int]:
    """:func:`imports_in` of one module of the package."""
    path = MODULES[module]
    return imports_in(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")


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


def test_the_check_sees_imports_hidden_in_functions_and_relative_ones():
    source = (
        "import numpy\n"
        "from . import streams\n"
        "from ..population import Population\n"
        "def f():\n"
        "    from chemomet.assess import twins\n"
        "    return importlib.import_module('chemomet.trial.cli')\n"
    )
    found = imports_in(source, "chemomet.model.engine")
    assert set(found) == {"chemomet.model", "chemomet.population", "chemomet.assess.twins", "chemomet.trial.cli"}
    assert found["chemomet.assess.twins"] == 5
    graph = {"a": {"b"}, "b": {"a"}}  # and a loop of two is a cycle
    with pytest.raises(CycleError):
        tuple(TopologicalSorter(graph).static_order())
