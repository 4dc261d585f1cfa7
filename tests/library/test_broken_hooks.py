"""The known-bad targets change the reference runtime only through its hooks (class attributes
and overridden methods), never by replacing attributes of objects they do not own."""

from __future__ import annotations

import ast
from pathlib import Path

import harness.examples.broken as broken


def test_no_known_bad_target_rewrites_another_objects_attributes() -> None:
    tree = ast.parse(Path(broken.__file__).read_text())
    offending = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if not isinstance(target, ast.Attribute):
                continue
            owner = target.value
            own = isinstance(owner, ast.Name) and owner.id == "self"
            documenting = target.attr == "__doc__"  # a target function it has just made
            if not (own or documenting) or target.attr == "__class__":
                offending.append(f"line {node.lineno}: {ast.unparse(target)}")
    assert offending == []
