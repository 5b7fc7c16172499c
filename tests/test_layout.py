"""The layout's rules that lint-imports (make lint) cannot see: tasks asked for by name exist."""

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
