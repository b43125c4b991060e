"""Comparing two sets of books (`roamclear books diff A B`): what differs, section by section.

Each side is a set of sections (transactions, postings, balances, rejections, outcomes), each
an iterable of rows sorted by key: the row's key and its comparable fields as text
(settlement.store.books_read reads them, leaving out what legitimately differs between two
databases: surrogate ids, booking and decision times). Sections are merged by key, so two
ledgers of millions of rows are compared without holding either in memory.

    >>> a = {"postings": [("t1/partner:NL*TNM/CREDIT/EUR#1", {"amount": "9.0000"})]}
    >>> b = {"postings": [("t1/partner:NL*TNM/CREDIT/EUR#1", {"amount": "9.5000"})]}
    >>> found = diff_books(a, b)
    >>> found.identical, found.counts["postings"]
    (False, 1)
    >>> found.differences[0].field, found.differences[0].a, found.differences[0].b
    ('amount', '9.0000', '9.5000')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# The sections, in the order they are compared and reported.
SECTIONS = ("transactions", "postings", "balances", "rejections", "outcomes")
# Differences kept for the report (all are counted): enough to see what went wrong.
DIFFERENCES_KEPT_MAX = 1_000
# A row only on one side is shown with this much of its fields.
ROW_SUMMARY_CHARS_MAX = 300

BooksRow = tuple[str, Mapping[str, str | None]]


@dataclass(frozen=True, slots=True)
class Difference:
    """One difference. `field` None: the row is on one side only (`a` or `b` summarises it,
    the other is None); else that field's value on each side."""

    section: str
    key: str
    field: str | None
    a: str | None
    b: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "key": self.key,
            "field": self.field,
            "a": self.a,
            "b": self.b,
        }


@dataclass(frozen=True, slots=True)
class BooksDiff:
    """Every section's count of differences, the first `DIFFERENCES_KEPT_MAX` of them, and
    how many rows each side had per section."""

    counts: Mapping[str, int]
    rows_a: Mapping[str, int]
    rows_b: Mapping[str, int]
    differences: tuple[Difference, ...]

    @property
    def identical(self) -> bool:
        return not any(self.counts.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "sections": {
                name: {
                    "differences": self.counts[name],
                    "rows_a": self.rows_a[name],
                    "rows_b": self.rows_b[name],
                }
                for name in self.counts
            },
            "differences": [d.as_json() for d in self.differences],
            "differences_shown": len(self.differences),
        }


def _summary(fields: Mapping[str, str | None]) -> str:
    text = ", ".join(f"{name}={value}" for name, value in fields.items())
    return text[:ROW_SUMMARY_CHARS_MAX]


class _Counted:
    """Rows of one side of one section, counted, checked to come sorted by unique key."""

    def __init__(self, rows: Iterable[BooksRow]) -> None:
        self._rows = iter(rows)
        self.count = 0
        self._last: str | None = None

    def next(self) -> BooksRow | None:
        row = next(self._rows, None)
        if row is not None:
            assert self._last is None or row[0] > self._last, f"rows not sorted at {row[0]!r}"
            self._last = row[0]
            self.count += 1
        return row


def diff_section(
    section: str, a_rows: Iterable[BooksRow], b_rows: Iterable[BooksRow]
) -> tuple[Iterator[Difference], _Counted, _Counted]:
    """The differences of one section (a lazy merge of both sides by key), and the two
    counted sides (their counts are final once the differences are consumed)."""
    a, b = _Counted(a_rows), _Counted(b_rows)
    return _merge(section, a, b), a, b


def _merge(section: str, a: _Counted, b: _Counted) -> Iterator[Difference]:
    row_a, row_b = a.next(), b.next()
    while row_a is not None or row_b is not None:
        if row_b is None or (row_a is not None and row_a[0] < row_b[0]):
            assert row_a is not None
            yield Difference(section, row_a[0], None, _summary(row_a[1]), None)
            row_a = a.next()
        elif row_a is None or row_b[0] < row_a[0]:
            yield Difference(section, row_b[0], None, None, _summary(row_b[1]))
            row_b = b.next()
        else:
            fields_a, fields_b = row_a[1], row_b[1]
            for name in dict.fromkeys([*fields_a, *fields_b]):
                value_a, value_b = fields_a.get(name), fields_b.get(name)
                if value_a != value_b:
                    yield Difference(section, row_a[0], name, value_a, value_b)
            row_a, row_b = a.next(), b.next()


def diff_books(
    a: Mapping[str, Iterable[BooksRow]],
    b: Mapping[str, Iterable[BooksRow]],
    kept_max: int = DIFFERENCES_KEPT_MAX,
) -> BooksDiff:
    """Compare every section either side has (a section missing on one side is empty)."""
    names = [name for name in SECTIONS if name in a or name in b]
    names += sorted({*a, *b} - set(SECTIONS))
    counts: dict[str, int] = {}
    rows_a: dict[str, int] = {}
    rows_b: dict[str, int] = {}
    kept: list[Difference] = []
    for name in names:
        differences, side_a, side_b = diff_section(name, a.get(name, ()), b.get(name, ()))
        counts[name] = 0
        for difference in differences:
            counts[name] += 1
            if len(kept) < kept_max:
                kept.append(difference)
        rows_a[name], rows_b[name] = side_a.count, side_b.count
    return BooksDiff(counts, rows_a, rows_b, tuple(kept))
