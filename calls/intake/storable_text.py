"""Which text robodash takes in: the one check of every text a file, the form, a shop's webhook
or the API hands over, before it is stored or looked up.

PostgreSQL refuses a NUL in text, and a lone surrogate (one half of a UTF-16 pair, which a JSON
`\\ud800` escape can carry) has no UTF-8 form at all: either would fail the query with a server
error. The other C0 control characters, DEL and the C1 codes are refused with them: nobody types
them into an order, and a voice, a terminal or a spreadsheet would act on them. Tab and line
breaks are allowed (a spreadsheet cell may hold a two-line store name; the voice reads them as
spaces).

A refused value is kept, where the order is kept as rejected, with each refused character
replaced by U+FFFD: what the shop sent stays recognisable, and nothing refused reaches the
database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The insides of character classes, escaped so that Python's re and the ECMA 262 dialect of
# JSON Schema read them alike: the API's description shows the control characters as a pattern
# (shops/api_inputs.py). A lone surrogate is no Unicode character, so no schema validator's
# pattern can name one (Rust's regex refuses the range): the description leaves it unsaid.
CONTROL_CLASS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
SURROGATE_CLASS = r"\ud800-\udfff"
UNSTORABLE_CHARACTERS = re.compile(f"[{CONTROL_CLASS}{SURROGATE_CLASS}]")
REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class RefusedCharacter:
    """The first character of field `name`'s value that robodash does not take, and where."""

    name: str
    character: str
    position: int  # counted from 1, as a person counts

    @property
    def code(self) -> str:
        return f"U+{ord(self.character):04X}"

    @property
    def surrogate(self) -> bool:
        return "\ud800" <= self.character <= "\udfff"

    @property
    def reason(self) -> str:
        """What is wrong, without the field's name (the API answers it under the name)."""
        if self.surrogate:
            what = f"half of a UTF-16 surrogate pair ({self.code})"
        else:
            nul = ", NUL" if self.character == "\x00" else ""
            what = f"a control character ({self.code}{nul})"
        return (
            f"contains {what} at position {self.position}; "
            "a value may hold text, tabs and line breaks only"
        )

    def __str__(self) -> str:
        """The reason in English, as a rejected order keeps it (like every intake reason; the
        pages put it in the reader's words around it)."""
        return f"{self.name} {self.reason}"


def refused_character(name: str, value: str) -> RefusedCharacter | None:
    """The first character of `value` (field `name`) robodash does not take, or None."""
    found = UNSTORABLE_CHARACTERS.search(value)
    if found is None:
        return None
    return RefusedCharacter(name, found.group(), found.start() + 1)


def storable(value: str) -> str:
    """`value` with every character refused_character would refuse replaced by U+FFFD."""
    return UNSTORABLE_CHARACTERS.sub(REPLACEMENT, value)
