"""A reconciliation as CSV (`roamclear reconcile --report FILE.csv`): one line per CDR and
class, amounts as exact decimal text, for a spreadsheet or a reply to the partner.

    class,cdr_key,currency,their_excl_vat,their_incl_vat,our_excl_vat,our_incl_vat,...
    amount_delta,NL*TNM*CDR-2026-0002,EUR,7.26,,7.2500,8.7725,0.0100,,2026-03,line 3,...
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Final

from settlement.reconcile.model import InvoiceCheck, Reconciliation

REPORT_COLUMNS: Final = (
    "class",
    "cdr_key",
    "currency",
    "their_excl_vat",
    "their_incl_vat",
    "our_excl_vat",
    "our_incl_vat",
    "delta_excl_vat",
    "delta_incl_vat",
    "period",
    "their_rows",
    "cause",
    "reason_code",
    "detail",
    "trace",
)

_Line = tuple[str, ...]


def _text(value: Decimal | str | None) -> str:
    return "" if value is None else str(value)


def _lines(found: Reconciliation) -> Iterator[_Line]:
    for m in found.matched:
        amounts = (_text(m.amount_excl_vat), _text(m.amount_incl_vat))
        yield ("matched", m.cdr_key, m.currency, *amounts, *amounts, "", "", m.period,
               " ".join(m.their_rows), "", "", "", "")  # fmt: skip
    for d in found.amount_deltas:
        yield ("amount_delta", d.cdr_key, d.their_currency if d.their_currency == d.our_currency
               else f"{d.their_currency} (ours {d.our_currency})",
               _text(d.their_excl_vat), _text(d.their_incl_vat), _text(d.our_excl_vat),
               _text(d.our_incl_vat), _text(d.delta_excl_vat), _text(d.delta_incl_vat),
               d.period, " ".join(d.their_rows), "", "", "; ".join(d.notes), d.trace)  # fmt: skip
    for t in found.only_theirs:
        why = t.explanation
        yield ("only_theirs", t.cdr_key, t.currency, _text(t.their_excl_vat),
               _text(t.their_incl_vat), "", "", "", "", "", t.their_row, why.cause.value,
               _text(why.reason_code), why.message, "")  # fmt: skip
    for o in found.only_ours:
        yield ("only_ours", o.cdr_key, o.currency, "", "", _text(o.our_excl_vat),
               _text(o.our_incl_vat), "", "", o.period, "", "", "", "; ".join(o.notes),
               o.trace)  # fmt: skip
    for dup in found.duplicates_in_theirs:
        detail = f"listed again; first at {dup.first}"
        yield ("duplicate_in_theirs", dup.cdr_id, "", "", "", "", "", "", "", "", dup.where,
               "", "", detail, "")  # fmt: skip


def _invoice_lines(check: InvoiceCheck) -> Iterator[_Line]:
    for line in check.lines:
        why = line.explanation
        yield ("invoice_cdr" if why is None else "invoice_cdr_not_booked",
               line.cdr_key or line.cdr_id, _text(line.currency), "", "",
               _text(line.amount_excl_vat), _text(line.amount_incl_vat), "", "", "", "",
               "" if why is None else why.cause.value,
               "" if why is None else _text(why.reason_code),
               "" if why is None else why.message, "")  # fmt: skip
    detail = (
        f"invoice {check.invoice_id}: {check.invoice_amount} {check.basis} vs hub "
        f"{check.hub_total_rounded} (rounded to the minor unit)"
    )
    yield ("invoice_total", "", check.currency, "", "", _text(check.hub_total_excl_vat),
           _text(check.hub_total_incl_vat), *(("", _text(check.delta)) if check.basis ==
           "incl_vat" else (_text(check.delta), "")), "", "", "", "", detail, "")  # fmt: skip


def report_csv(found: Reconciliation | InvoiceCheck) -> str:
    """The CSV text (header first), one line per CDR and class."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    lines = _lines(found) if isinstance(found, Reconciliation) else _invoice_lines(found)
    for line in lines:
        assert len(line) == len(REPORT_COLUMNS), line
        writer.writerow(line)
    return out.getvalue()
