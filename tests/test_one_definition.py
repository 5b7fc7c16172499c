"""Ideas defined once: the apps' code is read to check that no module writes its own copy of
one that has a home (the paisa, the encryption keys' reading)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ("calls", "shops", "robodash")


def modules() -> Iterator[tuple[str, ast.Module]]:
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text())


def calls_of(tree: ast.AST, name: str) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func
            if (isinstance(called, ast.Name) and called.id == name) or (
                isinstance(called, ast.Attribute) and called.attr == name
            ):
                yield node


def places(name: str, wanted: object) -> list[str]:
    """Where `name(...)` is called with the constant `wanted` as its first argument."""
    return [
        f"{path}:{call.lineno}"
        for path, tree in modules()
        for call in calls_of(tree, name)
        if call.args and isinstance(call.args[0], ast.Constant) and call.args[0].value == wanted
    ]


def test_the_paisa_is_written_once() -> None:
    """Amounts are checked and rounded to calls.models.CENT, never to a copy of it."""
    assert [place.split(":")[0] for place in places("Decimal", "0.01")] == ["calls/models.py"]


def test_only_the_settings_read_the_encryption_keys() -> None:
    """FIELD_ENCRYPTION_KEY is split and checked in robodash/settings.py; the apps use the list
    it made (FIELD_ENCRYPTION_KEYS)."""
    readers = sorted(
        f"{path}:{node.lineno}"
        for path, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "FIELD_ENCRYPTION_KEY"
    )
    assert readers == []
