"""The list pages' keyset cursor: a row's place in a list ordered by (a moment, id), as a page
link carries it.

    Cursor(created_at, 42).encode()     "1764412380000000_42"  (µs since the epoch, the id)
    Cursor(None, 42).encode()           "n_42"                 (a row whose moment is not set)

A link to another page names the row it starts after; the list filters from there on its
index, so no page costs an OFFSET or a COUNT(*). The Calls and Orders pages (newest first, both
ways: `newest_first_page`, `page_links`) share one walk; the follow-up queue (due callbacks,
then the oldest) filters in its own order.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest, QueryDict

M = TypeVar("M", bound=Model)

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


def newest_first_page(
    rows: QuerySet[M], moment: str, size: int, before: Cursor | None, after: Cursor | None
) -> tuple[list[M], bool]:
    """One page of `rows`, newest first by (`moment`, id), and whether more rows lie in the
    direction we moved.

    Keyset pagination walks a (moment, id) index from the cursor and stops after size + 1
    rows: no OFFSET, no COUNT(*), as fast on page 20,000 as on page 1. Every row has its
    moment, so the cursors (decoded without `unset`) always carry one.
    """
    if after is not None and after.at is not None:
        newer = (
            rows.filter(**{f"{moment}__gte": after.at})
            .exclude(**{moment: after.at, "id__lte": after.pk})
            .order_by(moment, "id")
        )
        found = list(newer[: size + 1])
        return list(reversed(found[:size])), len(found) > size
    if before is not None and before.at is not None:
        rows = rows.filter(**{f"{moment}__lte": before.at}).exclude(
            **{moment: before.at, "id__gte": before.pk}
        )
    found = list(rows.order_by(f"-{moment}", "-id")[: size + 1])
    return found[:size], len(found) > size


def with_params(params: QueryDict, **changes: str | None) -> str:
    query = params.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    return query.urlencode()


def filters_without_page(request: HttpRequest) -> QueryDict:
    """The filter without its page, and without empty fields."""
    filters = QueryDict(mutable=True)
    for name, values in request.GET.lists():
        kept = [value for value in values if value]
        if kept and name not in ("before", "after"):
            filters.setlist(name, kept)
    return filters


def page_links(
    filters: QueryDict,
    rows: list[M],
    moment: str,
    has_more: bool,
    before: Cursor | None,
    after: Cursor | None,
) -> tuple[str | None, str | None]:
    """The queries of the newer and the older page, None where there is none."""
    newer_query = older_query = None
    if rows:
        if (after is not None and has_more) or before is not None:
            newer_query = with_params(filters, after=Cursor.of(rows[0], moment).encode())
        if (after is None and has_more) or after is not None:
            older_query = with_params(filters, before=Cursor.of(rows[-1], moment).encode())
    return newer_query, older_query
