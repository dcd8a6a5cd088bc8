"""YAML read with limits: a config file cannot make Meld run out of memory or recurse
without end.

PyYAML's ``safe_load`` builds no arbitrary objects, but it still expands aliases: a
"billion laughs" document of a few hundred bytes (each anchor a list of ten aliases to
the previous one) stands for 10^9 values. The Python objects share their parts, yet
anything that walks them as a tree (validation, a ``repr`` in an error message, a
fingerprint) never finishes. :class:`LimitedSafeLoader` refuses such a document while
composing it, before any value is built:

- the file may hold at most :data:`MAX_DOCUMENT_BYTES`;
- the document, with every alias expanded, may hold at most :data:`MAX_NODES` values,
  nested at most :data:`MAX_DEPTH` deep, and no alias may contain itself.

Every problem is a :class:`~linkage.config.base.ConfigError` naming the file, with the
line and column, and never quoting more than a few words of the file.

Examples:
    ```py
    data = load_yaml_file(Path("config/demo.yaml"))  # a dict, or ConfigError
    ```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from linkage.config.base import ConfigError
from linkage.errors import MeldError

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_NODES",
    "LimitedSafeLoader",
    "load_yaml_file",
    "load_yaml_text",
]

MAX_DOCUMENT_BYTES = 1 << 20
"""Largest YAML file read (1 MiB); a project config is a few kilobytes."""
MAX_NODES = 20_000
"""Most values (scalars, lists, mappings) a document may hold with its aliases expanded."""
MAX_DEPTH = 50
"""Deepest nesting of lists and mappings, aliases expanded."""
MAX_ALIASES = 1_000
"""Most aliases (``*name``) in one document."""
MAX_PROBLEM_CHARS = 160


class YamlLimitError(MeldError, yaml.YAMLError):
    """A document breaks one of the limits; raised while composing, before building.
    :func:`load_yaml_text` turns it into a :class:`~linkage.config.base.ConfigError`."""

    def __init__(self, problem: str, mark: yaml.Mark | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class LimitedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses documents whose aliases expand too far.

    It counts aliases and nesting while composing, then measures the composed document
    with every alias expanded (each shared part measured once) before any Python value
    is built from it.

    Examples:
        >>> yaml.load("a: &x [1, 2]\\nb: *x\\n", Loader=LimitedSafeLoader)
        {'a': [1, 2], 'b': [1, 2]}
        >>> bomb = "a: &a [x, x]\\n" + "".join(
        ...     f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}]\\n"
        ...     for i in range(20))
        >>> try:
        ...     yaml.load(bomb, Loader=LimitedSafeLoader)
        ... except YamlLimitError as exc:
        ...     print(exc)
        aliases expand to more than 20000 values
    """

    max_nodes = MAX_NODES
    max_depth = MAX_DEPTH
    max_aliases = MAX_ALIASES

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """Compose one node, counting aliases and nesting on the way."""
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > self.max_aliases:
                raise YamlLimitError(
                    f"more than {self.max_aliases} aliases", self.peek_event().start_mark
                )
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise YamlLimitError(
                    f"nested more than {self.max_depth} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:
        """Compose the document, then measure it with its aliases expanded."""
        node = super().compose_document()
        if node is not None:
            _ExpandedSize(self.max_nodes, self.max_depth).measure(node)
        return node


class _ExpandedSize:
    """Values and height of a composed node as if every alias were copied out.

    A part shared by several aliases is measured once and remembered, so measuring
    costs as much as the text, not as much as the expansion.
    """

    def __init__(self, max_nodes: int, max_depth: int) -> None:
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.known: dict[int, tuple[int, int]] = {}
        self.open: set[int] = set()

    def measure(self, node: yaml.Node, depth: int = 1) -> tuple[int, int]:
        """(values, height) of ``node``; raises :class:`YamlLimitError` past a limit."""
        key = id(node)
        if key in self.known:
            size, height = self.known[key]
        else:
            if key in self.open:
                raise YamlLimitError(
                    "an alias refers to a list or mapping it is part of", node.start_mark
                )
            self.open.add(key)
            size, height = 1, 1
            for child in _children(node):
                if depth + 1 > self.max_depth:
                    raise YamlLimitError(
                        f"aliases nest values more than {self.max_depth} levels deep",
                        node.start_mark,
                    )
                child_size, child_height = self.measure(child, depth + 1)
                size += child_size
                height = max(height, child_height + 1)
                if size > self.max_nodes:
                    raise YamlLimitError(
                        f"aliases expand to more than {self.max_nodes} values", node.start_mark
                    )
            self.open.discard(key)
            self.known[key] = (size, height)
        if depth - 1 + height > self.max_depth:
            raise YamlLimitError(
                f"aliases nest values more than {self.max_depth} levels deep", node.start_mark
            )
        return size, height


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _problem(exc: yaml.YAMLError) -> str:
    """What PyYAML found and where, in at most a line: never the document's text."""
    problem = getattr(exc, "problem", None) or type(exc).__name__
    if len(problem) > MAX_PROBLEM_CHARS:
        problem = problem[: MAX_PROBLEM_CHARS - 3] + "..."
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def load_yaml_text(text: str, where: str) -> Any:
    """Parse one YAML document with :class:`LimitedSafeLoader`.

    Args:
        text: The document.
        where: The file (or other origin) named in errors.

    Raises:
        ConfigError: The text is not YAML, or breaks a limit.
    """
    try:
        return yaml.load(text, Loader=LimitedSafeLoader)
    except YamlLimitError as exc:
        raise ConfigError(f"{where}: YAML refused: {_problem(exc)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML: nested too deeply") from None


def load_yaml_file(path: Path) -> Any:
    """Read a UTF-8 YAML file of at most :data:`MAX_DOCUMENT_BYTES` and parse it.

    Raises:
        ConfigError: The file is too large, not UTF-8, not YAML, or breaks a limit.
    """
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise ConfigError(
            f"{path}: YAML refused: the file holds {size} bytes; at most "
            f"{MAX_DOCUMENT_BYTES} are read"
        )
    try:
        text = path.read_bytes()[: MAX_DOCUMENT_BYTES + 1].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid YAML: byte {exc.start} is not UTF-8 text") from None
    return load_yaml_text(text, str(path))
