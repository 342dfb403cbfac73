"""No import circle among the package's modules, counting imports inside functions too, and no arrow up
into the command line: the direction of every dependency is the one its imports show.

The package's root (``mefgan_tf/__init__.py``) is no node: every module's import runs it first anyway,
and what modules take from it (``__version__``) is no dependency on the API it offers lazily."""
from __future__ import annotations

import ast
from pathlib import Path

import mefgan_tf

PACKAGE = Path(mefgan_tf.__file__).parent
NAME = "mefgan_tf"


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its ``__init__``)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    del found[NAME]
    return found


def imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The package's modules an import statement names: ``from a import b`` names ``a.b`` when that is a module."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = node.module or ""
    if node.level:
        anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(anchor + ([base] if base else []))
    names = {f"{base}.{alias.name}" for alias in node.names}
    return {n for n in names if n in known} or ({base} if base in known else set())


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its code (module level or in a function)."""
    modules = module_names()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        graph[name] = set().union(*(imported(n, name, is_package, set(modules)) for n in ast.walk(tree))) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_graph_reader_sees_imports_in_functions_and_finds_a_circle():
    source = "import os\nfrom mefgan_tf.b import thing\n\ndef f():\n    from mefgan_tf import c\n"
    found = set().union(*(imported(n, f"{NAME}.a", False, {f"{NAME}.b", f"{NAME}.c"}) for n in ast.walk(ast.parse(source))))
    assert found == {f"{NAME}.b", f"{NAME}.c"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_of_the_package_imports_itself_back_through_others():
    graph = import_graph()
    assert sum(map(len, graph.values())) > 100  # the reader found the package's imports
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_only_the_command_line_imports_the_command_line():
    upward = {(name, target) for name, targets in import_graph().items() for target in targets
              if target.startswith(f"{NAME}.cli") and not name.startswith(f"{NAME}.cli")}
    assert not upward
