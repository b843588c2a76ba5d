"""Check the package's layering rules; exit 1 naming every breach.

Usage::

    python scripts/check_architecture.py [PACKAGE_DIR]   # default: benchmark/

Rules (the house rules, made mechanical):

- no import cycle between modules. Imports inside functions count: a lazy
  import hides a cycle from the interpreter, not from the reader;
- no private name (one leading underscore) imported from another module;
- no module over :data:`MAX_MODULE_LINES` lines, no function over
  :data:`MAX_FUNCTION_LINES` lines.

Only the standard library is used, so ``nox -s lint`` runs it without
installing the package.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def module_names(package: Path) -> dict[str, Path]:
    r"""Dotted module name → file, for every ``.py`` file under ``package``.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     pkg = Path(tmp) / "pkg"
        ...     (pkg / "sub").mkdir(parents=True)
        ...     for name in ("__init__.py", "a.py", "sub/__init__.py", "sub/b.py"):
        ...         _ = (pkg / name).write_text("")
        ...     sorted(module_names(pkg))
        ['pkg', 'pkg.a', 'pkg.sub', 'pkg.sub.b']

    """
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported(module: str, path: Path, tree: ast.Module) -> Iterator[tuple[str, str | None, int]]:
    r"""``(module imported from, name or None, line)`` for every import in ``tree``, relative ones resolved."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                yield source, alias.name, node.lineno


def import_graph(modules: dict[str, Path]) -> tuple[dict[str, set[str]], list[str]]:
    r"""Edges module → modules it imports (within ``modules``), and the cross-module private imports."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    private = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for source, item, line in imported(name, path, tree):
            target = f"{source}.{item}" if item and f"{source}.{item}" in modules else source
            if target in modules and target != name:
                graph[name].add(target)
            if source in modules and source != name and item and item.startswith("_") and not item.startswith("__"):
                private.append(f"{path}:{line}: imports private name {item} from {source}")
    return graph, private


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    r"""The import cycles: strongly connected components of more than one module (Tarjan), each sorted.

    Examples:
        >>> cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
        [['a', 'b']]
        >>> cycles({"a": {"b"}, "b": set()})
        []

    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def oversized(modules: dict[str, Path]) -> Iterator[str]:
    r"""Modules over :data:`MAX_MODULE_LINES` lines and functions over :data:`MAX_FUNCTION_LINES` lines."""
    for path in modules.values():
        text = path.read_text()
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            yield f"{path}: {lines} lines (at most {MAX_MODULE_LINES}); split it by concern"
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    yield f"{path}:{node.lineno}: function {node.name} has {length} lines (at most {MAX_FUNCTION_LINES})"


def problems(package: Path) -> list[str]:
    r"""Every breach of the rules in ``package``, one line each (empty if none)."""
    modules = module_names(package)
    graph, private = import_graph(modules)
    found = [f"import cycle: {' ↔ '.join(component)}" for component in cycles(graph)]
    return found + private + list(oversized(modules))


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default=str(Path(__file__).resolve().parents[1] / "benchmark"))
    args = parser.parse_args(None if argv is None else list(argv))
    package = Path(args.package).resolve()
    found = problems(package)
    for line in found:
        print(line.replace(f"{package.parent}/", ""))
    print(f"{len(found)} problem(s) in {args.package}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
