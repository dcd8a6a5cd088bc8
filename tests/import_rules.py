"""Meld's import rules, checked over a source tree: imports point down, and never in a circle.

The layers, from the bottom: ``linkage`` (domain code), ``training`` (training,
evaluation, MLflow), ``assets`` (thin Dagster adapters), ``orchestration`` (the Dagster
wiring and the command line). A module may import its own layer and the layers below;
Dagster belongs to ``assets`` and ``orchestration`` only.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("linkage", "training", "assets", "orchestration", "benchmarks")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "linkage": ("training", "assets", "orchestration", "benchmarks", "dagster"),
    "training": ("assets", "orchestration", "benchmarks", "dagster"),
    "assets": ("orchestration", "benchmarks"),
    "orchestration": ("benchmarks",),
}
"""Top-level packages each layer must not import (the command line is ``orchestration.cli``)."""


@dataclass(frozen=True)
class Import:
    """One import statement: who imports what, and where."""

    module: str
    imported: str
    path: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import, those for type checking only included: they are dependencies too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def imports_of(root: Path, path: Path, modules: set[str]) -> list[Import]:
    """The modules ``path`` imports; ``from pkg import sub`` counts as importing ``pkg.sub``."""
    module = module_name(root, path)
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        found += [Import(module, name, path, node.lineno) for name in names]
    return found


def project_files(root: Path) -> list[Path]:
    return sorted(p for package in PACKAGES for p in (root / package).rglob("*.py"))


def layer_violations(root: Path) -> list[str]:
    """Each import that points up a layer or into Dagster from domain code."""
    files = project_files(root)
    modules = {module_name(root, p) for p in files}
    problems = []
    for path in files:
        layer = module_name(root, path).split(".")[0]
        for imp in imports_of(root, path, modules):
            target = imp.imported.split(".")[0]
            if target in FORBIDDEN.get(layer, ()):
                problems.append(
                    f"{imp.where(root)}: {imp.module} imports {imp.imported} "
                    f"({layer}/ must not import {target})"
                )
    return problems


def import_cycles(root: Path) -> list[list[str]]:
    """Groups of project modules that import each other, directly or through others."""
    files = project_files(root)
    modules = {module_name(root, p) for p in files}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in files:
        for imp in imports_of(root, path, modules):
            target = imp.imported
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != imp.module:
                graph[imp.module].add(target)
    return [sorted(group) for group in _strongly_connected(graph) if len(group) > 1]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(group)
    return groups
