"""books_diff: a merge of two sorted sides that names every difference exactly once."""

from __future__ import annotations

import pytest

from settlement.books_diff import BooksRow, Difference, diff_books


def rows(*keys: str, amount: str = "1.0000") -> list[BooksRow]:
    return [(key, {"amount": amount, "currency": "EUR"}) for key in keys]


def test_identical_books_have_no_difference_and_count_rows() -> None:
    found = diff_books({"postings": rows("a", "b")}, {"postings": rows("a", "b")})
    assert found.identical and found.differences == ()
    assert found.rows_a == found.rows_b == {"postings": 2}
    assert found.as_json()["identical"] is True


def test_rows_on_one_side_and_changed_fields_are_each_named() -> None:
    a = {"postings": rows("a", "b", "d"), "outcomes": rows("x")}
    b = {
        "postings": [*rows("a"), ("b", {"amount": "1.0100", "currency": "EUR"}), *rows("c")],
        "outcomes": [],
    }
    found = diff_books(a, b)
    assert found.counts == {"postings": 3, "outcomes": 1}
    assert found.differences == (
        Difference("postings", "b", "amount", "1.0000", "1.0100"),
        Difference("postings", "c", None, None, "amount=1.0000, currency=EUR"),
        Difference("postings", "d", None, "amount=1.0000, currency=EUR", None),
        Difference("outcomes", "x", None, "amount=1.0000, currency=EUR", None),
    )


def test_every_difference_is_counted_but_only_the_first_are_kept() -> None:
    found = diff_books({"outcomes": rows(*"abcdef")}, {}, kept_max=2)
    assert found.counts == {"outcomes": 6} and len(found.differences) == 2
    assert found.as_json()["differences_shown"] == 2


def test_unsorted_rows_are_a_programming_error() -> None:
    with pytest.raises(AssertionError, match="not sorted"):
        diff_books({"outcomes": rows("b", "a")}, {"outcomes": rows("a", "b")})
