"""The layout's rules that lint-imports (make lint) cannot see: tasks asked for by name exist,
and docs/architecture.md names every module."""

from __future__ import annotations

import re
from pathlib import Path

from robodash.celery import app

ROOT = Path(__file__).resolve().parents[1]
ENQUEUED = re.compile(r"""\benqueue\(\s*["']([\w.]+)["']""")


def names_given_to_enqueue() -> set[str]:
    names = set()
    for package in ("calls", "shops", "robodash"):
        for path in (ROOT / package).rglob("*.py"):
            names |= set(ENQUEUED.findall(path.read_text()))
    return names


def test_every_task_enqueued_by_name_is_a_registered_task() -> None:
    app.loader.import_default_modules()  # the autodiscovery a worker does at start
    names = names_given_to_enqueue()
    assert names >= {"calls.tasks.sweep_due_work", "shops.tasks.sweep_write_backs"}
    assert sorted(names - set(app.tasks)) == []


def test_the_architecture_table_names_every_module_of_the_apps() -> None:
    """docs/architecture.md's "Where each job lives" names each module of calls/ and shops/ (or
    the folder that holds it), and nothing that is not there."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    table = doc[doc.index("## Where each job lives") :]
    table = table[: table.index("\n## ")]
    named = set(re.findall(r"`((?:calls|shops)/[\w/]*(?:\.py|/))`", table))
    modules = {
        path.relative_to(ROOT).as_posix()
        for app in ("calls", "shops")
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and path.name not in ("__init__.py", "apps.py")
    }
    unnamed = sorted(
        module
        for module in modules
        if module not in named and not any(module.startswith(f) for f in named if f.endswith("/"))
    )
    assert unnamed == []
    assert sorted(name for name in named if not (ROOT / name).exists()) == []
