"""The SDK's shape: no import circle between its modules, and no object reaching into another's
private members (issue 13). Both read the source with `ast`, so a lazy import inside a function
and an import under TYPE_CHECKING count as much as one at the top of a module.

Run as a script to print the import graph, its circles and every private access:
    .venv/bin/python sdk/tests/test_unit_structure.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "agentops"

# Private names that other modules may still touch, each with the reason. Keys: (module, attr).
ALLOWED = {
    # record() marks the agent's own event object with its record time (a store on the event,
    # not a read of our state); wire.recorded_fields() pops it as a dict key before sending.
    # A public name could clobber a field of the agent's own, and a function call would cost
    # record() a third of its time.
    ("agentops.session", "_recorded_at"),
    # The OpenAI/Anthropic SDKs' Stream objects (third-party, not ours): their iterator is
    # swapped so the agent keeps the Stream it asked for, with its type and methods.
    ("agentops.llms._wrap", "_iterator"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, tuple[Path, ast.Module]]:
    """{dotted module name: (path, parsed source)} for every module of the package."""
    return {
        module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in sorted(PACKAGE.rglob("*.py"))
    }


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))
    return node.module or ""


def import_graph() -> dict[str, set[str]]:
    """{module: the package's modules it imports anywhere in its source (top level, inside a
    function, under TYPE_CHECKING)}."""
    mods = modules()
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, (path, tree) in mods.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                # `from . import x` of a submodule x needs only x (its package is imported
                # before any of its submodules anyway); of any other name, the package itself.
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            for target in targets:
                if target in mods and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def private_accesses() -> list[tuple[str, int, str]]:
    """(module, line, source) of each `x._name` where x is not self/cls: a read or write of
    another object's (or module's) private member. Dunders are public protocol, not private."""
    found = []
    for name, (_path, tree) in modules().items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            attr = node.attr
            if not attr.startswith("_") or (attr.startswith("__") and attr.endswith("__")):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if (name, attr) in ALLOWED:
                continue
            found.append((name, node.lineno, ast.unparse(node)))
    return found


def test_no_import_circle_in_the_sdk():
    assert cycles(import_graph()) == []


def test_no_object_reaches_into_anothers_private_members():
    assert private_accesses() == []


def test_the_checks_see_a_circle_and_a_private_access():
    # The checks must be able to fail: a graph with a circle, and the module that used to have
    # one of each (exits.py called client._end_for_exit) parsed from a snippet.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("def f(client):\n    client._end_for_exit()\n    self._ok = 1\n")
    privates = [
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and n.attr.startswith("_") and n.value.id != "self"
    ]
    assert privates == ["_end_for_exit"]


if __name__ == "__main__":
    graph = import_graph()
    for name in sorted(graph):
        print(f"{name} -> {', '.join(sorted(graph[name])) or '-'}")
    print("circles:", cycles(graph) or "none")
    accesses = private_accesses()
    for module, line, source in accesses:
        print(f"private: {module}:{line}: {source}")
    print(f"private accesses across objects: {len(accesses)}", file=sys.stderr)
