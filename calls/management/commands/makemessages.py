"""Django's makemessages with robodash's defaults, so that `manage.py makemessages -l ur` and the
catalogue test (tests/test_translations.py) extract exactly the same strings.

- Only the code that makes pages: the simulator, stand-ins, benchmarks and tests are left out,
  and so is locale/ itself (the catalogue is written to LOCALE_PATHS[0]).
- Locations by file only, and no wrapping: a merge of two branches that both moved a string
  does not conflict on line numbers.
"""

from typing import Any

from django.core.management.commands import makemessages

NOT_TRANSLATED = [
    ".venv",
    "var",
    "locale",
    "tests",
    "bench",
    "simulator",
    "standins",
    "docs",
    "static",
    "docker",
]


class Command(makemessages.Command):
    def handle(self, *args: Any, **options: Any) -> str | None:
        options["ignore_patterns"] = [*options.get("ignore_patterns", []), *NOT_TRANSLATED]
        options["add_location"] = options.get("add_location") or "file"
        options["no_wrap"] = True
        return super().handle(*args, **options)
