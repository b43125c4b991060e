"""A statement as CSV: one table a spreadsheet opens, its figures exact decimals.

The first column, ``record``, says what a row is: ``header`` (``name``, ``value``), ``total``
(``name``, ``value``: the statement totals), ``vat`` (``name`` = role and rate, ``value`` =
incl. VAT, ``amount_excl_vat``) and ``line`` (one posting, the line columns). The totals
rows carry exactly the figures of the JSON form; the ``net`` column of the lines adds up to
``net_amount``. Times are UTC, ``2025-05-01T10:00:00.000000+00:00``.

Disputes are marked as of the export, outside the sealed figures: a line's ``disputes``
column names each dispute on it (settlement.disputes.mark_text; an adjustment's names the
CDR it adjusts and that CDR's period), and the ``disputed_lines`` total counts those lines.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, TextIO

from settlement.disputes import StatementMark, disputed_lines, marks_text
from settlement.statements.build import header_json, totals_json
from settlement.statements.model import Statement, StatementHeader, StatementTotals, VatRow

LINE_COLUMNS: Final = (
    "posting_id",
    "cdr_key",
    "kind",
    "role",
    "counterparty",
    "session_start",
    "session_end",
    "location_id",
    "energy_kwh",
    "amount_excl_vat",
    "amount_incl_vat",
    "fee",
    "fee_paid",
    "side",
    "amount",
    "net",
    "late",
    "transaction_id",
    "disputes",
)
COLUMNS: Final = ("record", "name", "value", *LINE_COLUMNS)
_PAD: Final = ("",) * len(LINE_COLUMNS)


def csv_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def write_csv_head(
    header: StatementHeader,
    totals: StatementTotals,
    vat: Sequence[VatRow],
    out: TextIO,
    disputed: int = 0,
) -> None:
    """The column names, header, total and vat rows (the lines follow); `disputed`: how many
    lines are disputed."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for name, value in header_json(header).items():
        text = ";".join(value) if isinstance(value, list) else ("" if value is None else value)
        writer.writerow(("header", name, text, *_PAD))
    for name, value in totals_json(totals).items():
        writer.writerow(("total", name, value, *_PAD))
    writer.writerow(("total", "disputed_lines", disputed, *_PAD))
    excl_at = LINE_COLUMNS.index("amount_excl_vat")
    for row in vat:
        pad = list(_PAD)
        pad[excl_at] = str(row.excl_vat)
        writer.writerow(
            ("vat", f"{row.role.value} {row.vat or 'unknown'}", str(row.incl_vat), *pad)
        )


def write_csv(statement: Statement, out: TextIO, marks: Sequence[StatementMark] = ()) -> int:
    """Write the whole statement from memory, its lines marked with `marks`; returns the
    number of line rows."""
    header = statement.header
    disputed = disputed_lines((line.transaction_id for line in statement.lines), marks)
    write_csv_head(header, statement.totals, statement.vat, out, disputed)
    texts = marks_text(marks, header.period_kind, header.settlement_tz)
    csv.writer(out, lineterminator="\n").writerows(
        (
            "line",
            "",
            "",
            line.posting_id,
            line.cdr_key,
            line.kind,
            line.role.value,
            line.counterparty or "",
            csv_time(line.session_start),
            csv_time(line.session_end),
            line.location_id or "",
            line.energy_kwh,
            line.amount_excl_vat,
            line.amount_incl_vat,
            line.fee,
            line.fee_paid,
            line.side.value,
            line.amount,
            line.net,
            "true" if line.late else "false",
            line.transaction_id,
            texts.get(line.transaction_id, ""),
        )
        for line in statement.lines
    )
    return len(statement.lines)
