"""The Urdu catalogue: complete, translated, and compiled.

locale/ur/LC_MESSAGES/django.po is the source; django.mo is committed beside it, so a fresh
checkout needs no compile step. These tests fail when a string marked in the code or a template
is missing from the .po, when a translation is empty or fuzzy or drops a placeholder, and when
the .mo is older than the .po. docs/i18n.md says how to update both.
"""

import gettext
import re
import shutil
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.template import Context, Template
from django.utils import translation

LOCALE = Path(settings.BASE_DIR) / "locale" / "ur" / "LC_MESSAGES"
PO = LOCALE / "django.po"
MO = LOCALE / "django.mo"
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|%%|<[^>]+>")


def entries(po: polib.POFile) -> set[tuple[str, str, str]]:
    return {(e.msgctxt or "", e.msgid, e.msgid_plural or "") for e in po if not e.obsolete}


def test_the_catalogue_has_every_string_the_code_marks(tmp_path, monkeypatch):
    if shutil.which("xgettext") is None:
        pytest.fail(
            "xgettext is not installed: apt-get install gettext (.ci/run does). makemessages "
            "needs it to find the strings marked for translation.",
            pytrace=False,
        )
    # makemessages with robodash's defaults (calls/management/commands/makemessages.py), run in
    # a copy of the tree made of links, without locale/: Django writes a catalogue into the
    # nearest locale/ above a source file, and the committed one must stay as it is.
    tree = tmp_path / "tree"
    tree.mkdir()
    for item in Path(settings.BASE_DIR).iterdir():
        if item.name not in ("locale", ".venv", ".git", "var"):
            (tree / item.name).symlink_to(item)
    monkeypatch.chdir(tree)
    catalogue = tmp_path / "catalogue"
    with translation.override(None), pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "LOCALE_PATHS", [catalogue])
        call_command("makemessages", locale=["ur"], symlinks=True, verbosity=0)
    extracted = entries(polib.pofile(str(catalogue / "ur" / "LC_MESSAGES" / "django.po")))

    missing = extracted - entries(polib.pofile(str(PO)))

    assert not missing, (
        f"{len(missing)} marked strings are not in {PO.relative_to(settings.BASE_DIR)}; run "
        "`make messages`, translate them, and commit the .po and .mo:\n"
        + "\n".join(f"  {msgid!r}" for _ctx, msgid, _plural in sorted(missing)[:20])
    )


def test_every_string_is_translated_with_its_placeholders():
    po = polib.pofile(str(PO))
    assert po.metadata["Language"] == "ur"
    assert po.metadata["Plural-Forms"] == "nplurals=2; plural=(n != 1);"
    problems = []
    for entry in po:
        if entry.obsolete:
            continue
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {entry.msgid!r}")
        pairs = (
            [
                (entry.msgid, entry.msgstr_plural.get(0, "")),
                (entry.msgid_plural, entry.msgstr_plural.get(1, "")),
            ]
            if entry.msgid_plural
            else [(entry.msgid, entry.msgstr)]
        )
        for source, translated in pairs:
            if not translated.strip():
                problems.append(f"untranslated: {source!r}")
            elif sorted(PLACEHOLDER.findall(source)) != sorted(PLACEHOLDER.findall(translated)):
                problems.append(f"placeholders differ: {source!r} -> {translated!r}")
    assert not problems, "\n".join(problems)


def test_the_committed_mo_is_compiled_from_the_po():
    """Compared by content (what gettext reads), not bytes: msgfmt's versions may differ in
    layout. Recompile with `make messages` when this fails."""
    po = polib.pofile(str(PO))
    expected: dict[object, str] = {}
    for entry in po:
        if entry.obsolete or "fuzzy" in entry.flags:
            continue
        msgid = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural:
            for index, text in entry.msgstr_plural.items():
                expected[(msgid, int(index))] = text
        else:
            expected[msgid] = entry.msgstr
    with MO.open("rb") as compiled:
        mo = gettext.GNUTranslations(compiled)
    catalog = {key: text for key, text in mo._catalog.items() if key != ""}  # type: ignore[attr-defined]

    assert mo.info()["language"] == "ur"
    assert mo.ngettext("call", "calls", 1) == "call" and mo.plural(2) == 1  # type: ignore[attr-defined]
    assert catalog == expected


def test_pages_speak_urdu_with_plurals():
    template = Template(
        "{% load i18n %}{% translate 'Overview' %} | "
        "{% blocktranslate count count=n %}{{ count }} call{% plural %}{{ count }} calls"
        "{% endblocktranslate %}"
    )
    with translation.override("ur"):
        assert template.render(Context({"n": 1})) == "خلاصہ | 1 کال"
        assert template.render(Context({"n": 3})) == "خلاصہ | 3 کالیں"
    with translation.override("en"):
        assert template.render(Context({"n": 3})) == "Overview | 3 calls"
