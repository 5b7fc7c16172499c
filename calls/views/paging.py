"""The list pages' keyset cursor: a row's place in a list ordered by (a moment, id), as a page
link carries it.

    Cursor(created_at, 42).encode()     "1764412380000000_42"  (µs since the epoch, the id)
    Cursor(None, 42).encode()           "n_42"                 (a row whose moment is not set)

A link to another page names the row it starts after; the list filters from there on its
index, so no page costs an OFFSET or a COUNT(*). The Calls page (newest first, both ways) and
the follow-up queue (due callbacks, then the oldest) each filter in their own order.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db.models import Model

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MICROSECOND = dt.timedelta(microseconds=1)
# Bounded digits: a mangled link is refused here, never turned into a huge number.
_WRITTEN = re.compile(r"(n|-?\d{1,20})_(\d{1,20})")


@dataclass(frozen=True)
class Cursor:
    at: dt.datetime | None  # None: the row's moment is not set (only where `unset` is allowed)
    pk: int

    @classmethod
    def of(cls, row: Model, moment_field: str) -> Cursor:
        return cls(getattr(row, moment_field), row.pk)

    def encode(self) -> str:
        if self.at is None:
            return f"n_{self.pk}"
        return f"{(self.at - _EPOCH) // _ONE_MICROSECOND}_{self.pk}"

    @classmethod
    def decode(cls, text: str, *, unset: bool = False) -> Cursor | None:
        """The cursor a link carries, or None if it is malformed. `unset`: the list has rows
        with no moment, so "n_<id>" is one of its cursors."""
        written = _WRITTEN.fullmatch(text)
        if written is None:
            return None
        if written[1] == "n":
            return cls(None, int(written[2])) if unset else None
        try:
            return cls(_EPOCH + int(written[1]) * _ONE_MICROSECOND, int(written[2]))
        except OverflowError:
            return None
