"""Reading a spec file into data and a key -> line index, with bounded cost.

A spec is small; a file that is not (megabytes, nesting thousands deep, aliases that expand
to billions of nodes, an alias inside its own definition) is a mistake or an attack, and must
end in a one-line error rather than a RecursionError or a hang. The document is composed once
by a loader that counts, for every node, how many nodes and levels it stands for once its
aliases are expanded (memoised per node, so counting costs no more than composing); the data
and the line index are both built from that one node graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tune_app.errors import UsageError

MAX_SPEC_BYTES = 256 * 1024  # the bundled specs are under 2 KiB
MAX_NODES = 100_000  # YAML nodes after alias expansion (keys, values, list items)
MAX_DEPTH = 32  # nesting levels after alias expansion; a real spec needs 6


_FLATTEN = "write the values out: a spec needs neither deep nesting nor aliases of aliases"


class _TooLarge(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None, fix: str = _FLATTEN):
        super().__init__(message)
        self.message, self.mark, self.fix = message, mark, fix


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses recursive aliases and oversized or overdeep documents."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._open: set[str] = set()  # anchors whose node is still being composed
        # id(node) -> (node, expanded node count, expanded depth); the node is kept so ids stay unique
        self._size: dict[int, tuple[yaml.Node, int, int]] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _TooLarge(f"recursive YAML alias: *{event.anchor} is used inside &{event.anchor} itself",
                                event.start_mark, fix=f"replace *{event.anchor} by the values it should repeat")
            return super().compose_node(parent, index)
        self._depth += 1
        # PyYAML's composer recurses once per level: stop well before Python's recursion limit.
        if self._depth > MAX_DEPTH:
            raise _TooLarge(f"YAML nested more than {MAX_DEPTH} levels deep", event.start_mark)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor)
        self._measure(node)
        return node

    def _measure(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        # Every child is complete (aliases only name finished nodes), so its counts are known.
        size = 1 + sum(self._size[id(c)][1] for c in children)
        depth = 1 + max((self._size[id(c)][2] for c in children), default=0)
        if size > MAX_NODES:
            raise _TooLarge(f"YAML expands to more than {MAX_NODES} nodes (each alias repeats what it names)",
                            node.start_mark)
        if self._depth + depth > MAX_DEPTH:
            raise _TooLarge(f"YAML nested more than {MAX_DEPTH} levels deep once aliases are expanded",
                            node.start_mark)
        self._size[id(node)] = (node, size, depth)


def _line_index(root: yaml.Node | None) -> dict[str, int]:
    """Map dotted key -> 1-based YAML line, so errors can point at the line."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key)

    if root is not None:
        walk(root, "")  # bounded: the loader capped the expanded size and depth
    return lines


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    if len(raw) > MAX_SPEC_BYTES:
        raise UsageError(f"the spec is {len(raw)} bytes; a spec is at most {MAX_SPEC_BYTES}", file=str(path),
                         fix="pass the YAML spec itself (a few sections of keys), not a data file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise UsageError(f"not UTF-8 text (byte {raw[err.start]:#04x} at offset {err.start})", file=str(path),
                         line=line, fix="save the file as UTF-8") from None


def read_yaml(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The spec's top-level mapping and its key -> line index; UsageError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UsageError("spec file not found", file=str(path),
                         fix="pass an existing YAML file, e.g. --space search_spaces/quickstart.yaml")
    loader = _BoundedLoader(_decode(path))
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except _TooLarge as err:
        raise UsageError(err.message, file=str(path), line=err.mark.line + 1 if err.mark else None,
                         fix=err.fix) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UsageError(f"YAML syntax error: {problem}", file=str(path),
                         line=mark.line + 1 if mark else None,
                         fix="check indentation and quoting on that line") from None
    finally:
        loader.dispose()
    if data is None or data == {}:
        # An empty spec would silently run every default: most likely the wrong file.
        raise UsageError("the spec is empty (no sections)", file=str(path),
                         fix="write at least 'dataset:', 'model:' and 'train:' sections, "
                         "e.g. copy search_spaces/quickstart.yaml")
    if not isinstance(data, dict):
        raise UsageError("the spec must be a mapping of sections (dataset:, model:, train:, ...)",
                         file=str(path), fix="start the file with section names like 'train:'")
    return data, _line_index(root)
