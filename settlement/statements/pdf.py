"""A statement as a PDF document finance can send to the partner (fpdf2, A4 landscape).

Page 1 carries the header (partner, roles, period, currency, batch id, checksum, dates), the
totals with the direction of payment and the VAT breakdown; the lines follow as a table over
as many pages as needed, the column titles repeated on each, ``Page n/N`` in every footer.
Statements longer than ``PDF_LINES_MAX`` lines list the first ones and say where the rest is
(the CSV export carries every line). Fonts are the PDF core fonts (Latin-1 text).

Disputes are marked as of rendering, outside the sealed figures: the ``Dispute`` column
gives the ids of the disputes on a line, page 1 counts the disputed lines and lists each
dispute (settlement.disputes.mark_text: an adjustment's names the CDR it adjusts and that
CDR's period).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from fpdf import FPDF

from settlement.disputes import StatementMark, disputed_lines, mark_text, marks_by_transaction
from settlement.statements.model import Direction, Statement, StatementLine

PDF_LINES_MAX: Final = 50_000
_DISPUTES_LISTED_MAX: Final = 200  # page 1 lists this many disputed lines; the CSV has all
_LINE_HEIGHT_MM: Final = 5.0
_COLUMNS: Final = (
    ("Posting", 18, "R"),
    ("CDR", 52, "L"),
    ("Role", 18, "L"),
    ("Counterparty", 22, "L"),
    ("Session end (UTC)", 26, "L"),
    ("Location", 22, "L"),
    ("kWh", 16, "R"),
    ("Excl. VAT", 20, "R"),
    ("Incl. VAT", 20, "R"),
    ("Fee paid", 16, "R"),
    ("Net", 22, "R"),
    ("Late", 10, "C"),
    ("Dispute", 14, "L"),
)
_DIRECTION_TEXT: Final = {
    Direction.HUB_PAYS_PARTNER: "The hub pays the partner",
    Direction.PARTNER_PAYS_HUB: "The partner pays the hub",
    Direction.NOTHING_DUE: "Nothing is due",
}


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,} {currency}"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


class _StatementPdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self._title = _latin1(title)
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(self._title)
        self.set_creator("roamclear")

    def header(self) -> None:
        self.set_font("Helvetica", "B", 9)
        self.cell(0, 6, self._title, new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "", 8)
        self.cell(0, 6, f"Page {self.page_no()}/{{nb}}", align="C")


def _pairs(pdf: FPDF, rows: list[tuple[str, str]], label_mm: float = 70) -> None:
    for label, value in rows:
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(label_mm, 6, _latin1(label))
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(0, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")


def _summary(pdf: FPDF, statement: Statement, marks: Sequence[StatementMark]) -> None:
    header, totals, cur = statement.header, statement.totals, statement.header.currency
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Settlement statement", new_x="LMARGIN", new_y="NEXT")
    _pairs(
        pdf,
        [
            ("Partner", header.partner),
            ("Role(s)", ", ".join(header.roles) or "-"),
            (
                "Period",
                f"{header.period_kind.lower()}, {_when(header.period_start)} to "
                f"{_when(header.period_end)} UTC (settlement zone {header.settlement_tz})",
            ),
            ("Currency", cur),
            ("Statement (batch) id", str(header.batch_id)),
            ("Checksum (sha256)", header.checksum),
            (
                "Seal (HMAC-SHA256)",
                "- (closed before sealing)"
                if header.seal is None
                else f"{header.seal} (key {header.seal_key_id})",
            ),
            ("Created", _when(header.created_at) + " UTC"),
            ("Closed", "-" if header.closed_at is None else _when(header.closed_at) + " UTC"),
        ],
    )
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Totals", new_x="LMARGIN", new_y="NEXT")
    _pairs(
        pdf,
        [
            ("Charges receivable as CPO", _money(totals.receivable_as_cpo, cur)),
            ("Charges payable as eMSP", _money(totals.payable_as_emsp, cur)),
            ("Hub fees", _money(totals.hub_fees, cur)),
            ("Rounding", _money(totals.rounding, cur)),
            ("Net amount", _money(totals.net_amount, cur)),
            ("Direction", _DIRECTION_TEXT[totals.direction]),
            (
                "of which late adjustments",
                f"{_money(totals.late_adjustments, cur)} ({totals.late_postings} late postings)",
            ),
            ("Postings", str(totals.postings)),
            (
                "Disputed lines (as of printing)",
                str(disputed_lines((line.transaction_id for line in statement.lines), marks)),
            ),
        ],
    )
    if statement.vat:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, "VAT breakdown", new_x="LMARGIN", new_y="NEXT")
        _pairs(
            pdf,
            [
                (
                    f"{row.role.value}, VAT {row.vat or 'unknown'} %",
                    f"excl. {_money(row.excl_vat, cur)} / incl. {_money(row.incl_vat, cur)}",
                )
                for row in statement.vat
            ],
        )
    _disputes(pdf, statement, marks)


def _disputes(pdf: FPDF, statement: Statement, marks: Sequence[StatementMark]) -> None:
    by_transaction = marks_by_transaction(marks)
    disputed = [line for line in statement.lines if line.transaction_id in by_transaction]
    if not disputed:
        return
    header = statement.header
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Disputes (not part of the sealed figures)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for line in disputed[:_DISPUTES_LISTED_MAX]:
        for mark in by_transaction[line.transaction_id]:
            text = mark_text(mark, header.period_kind, header.settlement_tz)
            pdf.cell(0, 5, _latin1(f"Posting {line.posting_id} ({line.cdr_key}): {text}"),
                     new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    if len(disputed) > _DISPUTES_LISTED_MAX:
        pdf.cell(0, 5, f"... {len(disputed) - _DISPUTES_LISTED_MAX} more disputed lines: "
                 "see the CSV export", new_x="LMARGIN", new_y="NEXT")  # fmt: skip


def _table_head(pdf: FPDF) -> None:
    pdf.set_font("Helvetica", "B", 8)
    for title, width, align in _COLUMNS:
        pdf.cell(width, 6, title, border="B", align=align)
    pdf.ln()
    pdf.set_font("Helvetica", "", 7)


def _cells(line: StatementLine, ids: Mapping[str, tuple[StatementMark, ...]]) -> tuple[str, ...]:
    return (
        str(line.posting_id),
        line.cdr_key[:40],
        line.role.value,
        line.counterparty or "",
        _when(line.session_end),
        (line.location_id or "")[:14],
        str(line.energy_kwh),
        str(line.amount_excl_vat),
        str(line.amount_incl_vat),
        str(line.fee_paid),
        str(line.net),
        "yes" if line.late else "",
        ",".join(str(m.dispute_id) for m in ids.get(line.transaction_id, ()))[:9],
    )


def render_pdf(statement: Statement, marks: Sequence[StatementMark] = ()) -> bytes:
    """The statement as PDF bytes, its lines marked with `marks` (the disputes the reader
    may see: settlement.store.disputes.statement_marks)."""
    header = statement.header
    by_transaction = marks_by_transaction(marks)
    pdf = _StatementPdf(
        f"roamclear settlement statement {header.batch_id} - {header.partner} - "
        f"{header.currency} - {_when(header.period_start)}"
    )
    pdf.add_page()
    _summary(pdf, statement, marks)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, f"Lines ({statement.totals.postings})", new_x="LMARGIN", new_y="NEXT")
    _table_head(pdf)
    bottom = pdf.h - 15 - _LINE_HEIGHT_MM
    for index, line in enumerate(statement.lines):
        if index == PDF_LINES_MAX:
            pdf.cell(
                0,
                6,
                f"... {len(statement.lines) - PDF_LINES_MAX} more lines: see the CSV "
                "export of this statement.",
                new_x="LMARGIN",
                new_y="NEXT",
            )
            break
        if pdf.get_y() > bottom:
            pdf.add_page()
            _table_head(pdf)
        for text, (_, width, align) in zip(_cells(line, by_transaction), _COLUMNS, strict=True):
            pdf.cell(width, _LINE_HEIGHT_MM, _latin1(text), align=align)
        pdf.ln()
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(
        0,
        8,
        _latin1(f"Net amount {_money(statement.totals.net_amount, header.currency)}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())
