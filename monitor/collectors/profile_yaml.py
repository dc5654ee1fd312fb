"""Reading profile YAML with the line of every key, so each problem can name its line.

Two details worth knowing:

- Booleans follow YAML 1.2: only `true` and `false`. YAML 1.1 (PyYAML's default) reads unquoted
  `on`, `off`, `yes` and `no` as booleans, which would silently turn `equals: off` (a screen state)
  into `false` and the rule would never match.
- A key written twice in one mapping is a problem (PyYAML would silently keep the last one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitor.collectors.errors import ProfileProblem

Path_ = tuple[str, ...]
_BOOL_TAG = "tag:yaml.org,2002:bool"


class Yaml12SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with YAML 1.2 booleans (`true`/`false` only)."""


Yaml12SafeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12SafeLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def where(path: Path_) -> str:
    """A location for people: `readings.uptime_s.oid`, `faults[2].above`."""
    text = ""
    for part in path:
        if part.isdigit():
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class LineIndex:
    """The line of each location of one YAML document (keys point at their own line)."""

    def __init__(self, lines: Mapping[Path_, int]) -> None:
        self._lines = dict(lines)

    def line(self, path: Path_) -> int | None:
        """The line of `path`, or of its nearest enclosing location that has one."""
        for end in range(len(path), -1, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None


def load_yaml(text: str, file: str) -> tuple[Any, LineIndex, list[ProfileProblem]]:
    """Parse one YAML document: its data, the line index, and the problems found (syntax, duplicate keys).

    On a syntax error the data is None and the problem carries the line PyYAML reports.
    """
    try:
        node = yaml.compose(text, Loader=Yaml12SafeLoader)
        data = yaml.load(text, Loader=Yaml12SafeLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        return None, LineIndex({}), [_syntax_problem(exc, file)]
    lines: dict[Path_, int] = {}
    problems: list[ProfileProblem] = []
    if node is not None:
        _index(node, (), lines, problems, file)
    return data, LineIndex(lines), problems


def _syntax_problem(exc: yaml.YAMLError, file: str) -> ProfileProblem:
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    mark = problem_mark or context_mark
    reason = str(getattr(exc, "problem", None) or exc).strip()
    context = getattr(exc, "context", None)
    if context and context_mark is not None and problem_mark is not None and context_mark.line != problem_mark.line:
        context = f"{context} (opened on line {context_mark.line + 1})"
    text = f"YAML syntax error: {context + ', ' if context else ''}{reason}"
    return ProfileProblem(file, mark.line + 1 if mark is not None else None, "", text)


def _index(node: Node, path: Path_, lines: dict[Path_, int], problems: list[ProfileProblem], file: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    ProfileProblem(
                        file, line, where((*path, key)), f"duplicate key {key!r} (first on line {seen[key]})"
                    )
                )
                continue
            seen[key] = line
            lines[(*path, key)] = line
            _index(value_node, (*path, key), lines, problems, file)
    elif isinstance(node, SequenceNode):
        for position, item in enumerate(node.value):
            _index(item, (*path, str(position)), lines, problems, file)


__all__ = ["LineIndex", "Yaml12SafeLoader", "load_yaml", "where"]
