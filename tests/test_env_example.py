""".env.example lists every variable robodash reads from the environment, and only those: the
names the code reads (robodash/, calls/, shops/, found in their syntax trees) and the ones
docker-compose.yml substitutes are compared with the file's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The application's code. simulator/, standins/ and bench/ are tools that say their own
# variables in their --help.
CODE = ("robodash", "calls", "shops")
# Calls that read the variable named by their first argument.
READERS = {"get", "getenv", "envbool", "envint", "envfloat", "envsecret", "envzone"}

# Read by the code, yet no setting: one command's input, read from the environment so that a
# secret never sits in argv or the shell history (the README gives them with their commands),
# or what `make run` hands its own child.
NOT_SETTINGS = {
    "ROBOCALL_API_KEY": "add_store's API key",
    "ROBODASH_PASSWORD": "add_user's password",
    "ROBODASH_DEMO_SHOPIFY_URL": "make run tells seed_demo where its Shopify stand-in is",
    "PYTEST_XDIST_WORKER": "pytest-xdist names each test process (robodash/pytest_plugin.py)",
}


def _is_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _literal(node: ast.expr, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def names_read_in(source: str) -> set[str]:
    """Variables `source` reads: os.environ.get / os.getenv / the settings' env helpers and
    os.environ[...] with a literal name, or a module constant holding one."""
    tree = ast.parse(source)
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    names = set()
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute):
                reads = func.attr in READERS and (_is_environ(func.value) or func.attr == "getenv")
            else:
                reads = isinstance(func, ast.Name) and func.id in READERS - {"get", "getenv"}
            if reads:
                name = _literal(node.args[0], constants)
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and _is_environ(node.value)
        ):
            name = _literal(node.slice, constants)
        if name is not None:
            names.add(name)
    return names


def names_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for package in CODE:
        for path in sorted((ROOT / package).rglob("*.py")):
            names |= names_read_in(path.read_text())
    # Django's and Celery's own (read by Django, not by robodash).
    return names - {"DJANGO_SETTINGS_MODULE"}


def names_compose_substitutes() -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))


def names_in_env_example() -> set[str]:
    """`NAME=value` lines, and `# NAME=value` ones (given commented out where an empty value
    would mean something: a `.env` copied from it goes into every container)."""
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_the_reader_finds_every_form_the_code_uses():
    source = """
import os
KEY_ENV = "FROM_A_CONSTANT"
a = os.environ.get("WITH_GET", "")
b = os.environ["BY_INDEX"]
c = envbool("BY_HELPER", "false")
d = os.getenv("WITH_GETENV")
e = os.environ.get(KEY_ENV, "")
os.environ["WRITTEN_NOT_READ"] = "x"
os.environ.setdefault("DEFAULTED_NOT_READ", "x")
"""
    assert names_read_in(source) == {
        "WITH_GET",
        "BY_INDEX",
        "BY_HELPER",
        "WITH_GETENV",
        "FROM_A_CONSTANT",
    }


def test_env_example_lists_every_variable_the_code_and_compose_read():
    read = names_read_by_the_code() - set(NOT_SETTINGS)
    missing = (read | names_compose_substitutes()) - names_in_env_example()
    assert missing == set(), f"read but not in .env.example: {sorted(missing)}"
    assert {"ROBODASH_PUBLIC_URL", "ROBODASH_DEFAULT_STORE_TIMEZONE", "CACHE_URL"} <= read


def test_env_example_lists_nothing_that_is_not_read():
    caddy = set(re.findall(r"\{\$([A-Z][A-Z0-9_]*)", (ROOT / "Caddyfile").read_text()))
    read = names_read_by_the_code() | names_compose_substitutes() | caddy
    unread = names_in_env_example() - read
    assert unread == set(), f"in .env.example but read by nothing: {sorted(unread)}"


def test_the_commands_inputs_are_named_in_the_readme_beside_their_commands():
    readme = (ROOT / "README.md").read_text()
    assert set(NOT_SETTINGS) <= names_read_by_the_code()  # each still read: the list stays true
    for name in ("ROBOCALL_API_KEY", "ROBODASH_PASSWORD"):
        assert name in readme, name
