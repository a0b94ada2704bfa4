"""Line numbers for config problems: `routes.chat.fallbacks[2]: ...` -> `line 14: ...`.

The validator names key paths; this finds where a path sits in the YAML text (the
deepest part of it that exists there), so a rejected reload points at the line to fix.
"""

from __future__ import annotations

import re

import yaml

_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _parts(path: str) -> list[str | int]:
    return [int(m.group(1)) if m.group(1) is not None else m.group(2) for m in _PART.finditer(path)]


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, int] | None:
    """The child node for `part` and the line (0-based) that names it."""
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return value, key.start_mark.line
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item = node.value[part]
        return item, item.start_mark.line
    return None


def line_of(root: yaml.Node | None, path: str) -> int | None:
    """1-based line of the deepest node of `path` present in the document."""
    node, line = root, None
    for part in _parts(path):
        if node is None:
            break
        found = _child(node, part)
        if found is None:
            break
        node, line = found
    return None if line is None else line + 1


def with_lines(problems: list[str], text: str) -> list[str]:
    """Prefix `line N: ` to each `key.path: message` problem whose path is in `text`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return problems
    located = []
    for problem in problems:
        path, sep, _ = problem.partition(": ")
        line = line_of(root, path) if sep and not path.startswith(("line ", "(")) else None
        located.append(f"line {line}: {problem}" if line is not None else problem)
    return located
