"""CSV export straight from PostgreSQL: totals by one aggregate, lines by ``COPY … TO STDOUT``.

The same figures as ``settlement.statements.build`` computes in Python (role, fee paid,
net per line, the totals by role), expressed in SQL so a 100,000-line statement streams out
in about a second; each rule's SQL is rendered from its Python definition (``role_sql``,
``expected_net_sql``, ``fold_sql``), and a test holds the two to the same
totals. The VAT rows are not in SQL: the lines' breakdowns
are read and summed by the Python rule itself (``vat_parts``, ``vat_rows_of``).
Layout: settlement.statements.csv_export.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, TextIO

import psycopg
from psycopg.rows import tuple_row

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.batch import BatchState
from schemas.hub.ledger import TransactionKind
from settlement.disputes import StatementMark, marks_text
from settlement.statements.build import (
    SELF_BILLING_CPO,
    TOTAL_FOLDS,
    Figure,
    Fold,
    direction_of,
    stored_over,
    vat_parts,
    vat_rows_of,
)
from settlement.statements.csv_export import write_csv_head
from settlement.statements.model import (
    GROSS_AS_NET,
    LineRole,
    StatementHeader,
    StatementTotals,
    VatPart,
    VatRow,
)
from settlement.store.db import Row
from settlement.store.statements import LINES_FETCH_ROWS, StatementNotFound, stored_totals


def role_sql(partner: str, cpo: str, emsp: str, kind: str, side: str) -> str:
    """``role_of`` in SQL, its branches in its order, with the same constants (cpo and emsp
    are NOT NULL, so ``<>`` is Python's ``!=``); a test holds the two equal on every case."""
    cpo_kind, cpo_side = SELF_BILLING_CPO
    return f"""CASE WHEN {kind} = '{TransactionKind.ROUNDING}' THEN '{LineRole.ROUNDING}'
                WHEN {cpo} = {partner} AND {emsp} <> {partner} THEN '{LineRole.CPO}'
                WHEN {emsp} = {partner} AND {cpo} <> {partner} THEN '{LineRole.EMSP}'
                WHEN ({kind} = '{cpo_kind}') = ({side} = '{cpo_side}') THEN '{LineRole.CPO}'
                ELSE '{LineRole.EMSP}' END"""


def expected_net_sql(role: str, gross: str) -> str:
    """``StatementLine.expected_net`` in SQL, rendered from ``GROSS_AS_NET``."""
    cases = " ".join(f"WHEN '{r}' THEN {sign}" for r, sign in GROSS_AS_NET.items())
    return f"CASE {role} {cases} END * {gross}"


# A figure of a line as the figures table below names it (Figure's Python definitions:
# settlement.statements.build.Figure.of, model.StatementLine)
_FIGURE_SQL: Final = {
    Figure.GROSS: "amount_incl_vat",
    Figure.FEE_PAID: "expected - net",
    Figure.NET: "net",
}


def fold_sql(name: str, fold: Fold) -> str:
    """One of ``TOTAL_FOLDS`` as an aggregate over statement_figures."""
    roles = ", ".join(f"'{role}'" for role in sorted(fold.roles))
    return (
        f"coalesce(sum({_FIGURE_SQL[fold.figure]}) FILTER (WHERE role IN ({roles})), 0) AS {name}"
    )


_FIGURES: Final = f"""
SELECT line.*, {expected_net_sql("role", "amount_incl_vat")} AS expected
  FROM (
    SELECT p.posting_id, p.transaction_id, t.kind, t.cdr_key, t.location_id, t.energy_kwh,
           t.session_start, t.session_end, p.side, p.amount,
           t.rating->'vat_breakdown' AS vat_breakdown,
           p.value_time < b.period_start AS late,
           CASE WHEN p.side = 'CREDIT' THEN p.amount ELSE -p.amount END AS net,
           t.amount_excl_vat, t.amount_incl_vat, t.fee,
           {role_sql("b.partner", "t.cpo", "t.emsp", "t.kind", "p.side")} AS role,
           t.cpo, t.emsp
      FROM settlement_batch b
     CROSS JOIN LATERAL settlement_batch_postings(b) p
      JOIN ledger_transaction t ON t.transaction_id = p.transaction_id
     WHERE b.batch_id = %s AND b.state = 'CLOSED'
) line
"""

_TOTALS: Final = f"""
SELECT count(*) AS postings, count(*) FILTER (WHERE late) AS late_postings,
       {", ".join(fold_sql(name, fold) for name, fold in TOTAL_FOLDS.items())},
       coalesce(sum(net) FILTER (WHERE late), 0) AS late_net,
       coalesce(sum(amount) FILTER (WHERE side = 'DEBIT'), 0) AS debit,
       coalesce(sum(amount) FILTER (WHERE side = 'CREDIT'), 0) AS credit,
       bool_or(role = 'CPO') AS as_cpo, bool_or(role = 'EMSP') AS as_emsp
  FROM statement_figures
"""

# the VAT rows are summed in Python (``vat_rows_of``, ``vat_parts``): one rule for every
# format, and the breakdown's JSON numbers read as the PDF/JSON read them
_VAT_LINES: Final = """
SELECT role, amount_excl_vat, amount_incl_vat, vat_breakdown
  FROM statement_figures WHERE role <> 'ROUNDING'
"""

_TS: Final = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"

_LINES_COPY: Final = f"""
COPY (SELECT 'line', NULL, NULL, posting_id, cdr_key, kind, role,
       CASE role WHEN 'CPO' THEN emsp WHEN 'EMSP' THEN cpo END,
       {_TS.format("session_start")}, {_TS.format("session_end")}, location_id, energy_kwh,
       amount_excl_vat, amount_incl_vat, fee,
       CASE role WHEN 'ROUNDING' THEN 0 ELSE expected - net END, side, amount, net,
       CASE WHEN late THEN 'true' ELSE 'false' END, transaction_id, coalesce(m.text, '')
  FROM statement_figures LEFT JOIN pg_temp.statement_line_marks m USING (transaction_id)
 ORDER BY posting_id) TO STDOUT (FORMAT csv)
"""
# a line is disputed when a mark names its transaction (settlement.disputes.disputed_lines)
_DISPUTED: Final = """
SELECT count(*) AS n FROM statement_figures JOIN pg_temp.statement_line_marks USING (transaction_id)
"""


def _batch_row(conn: psycopg.Connection[Row], batch_id: int) -> Row:
    batch = conn.execute(
        "SELECT * FROM settlement_batch WHERE batch_id = %s AND state = 'CLOSED'", (batch_id,)
    ).fetchone()
    if batch is None:
        raise StatementNotFound(f"no closed settlement batch {batch_id}")
    return batch


def _header(batch: Row, roles: tuple[str, ...]) -> StatementHeader:
    return StatementHeader(
        batch["batch_id"],
        batch["partner"],
        roles,
        batch["currency"],
        SettlementPeriod(batch["period_kind"]),
        batch["period_start"],
        batch["period_end"],
        batch["settlement_tz"],
        BatchState(batch["state"]),
        batch["checksum"],
        batch["created_at"],
        batch["closed_at"],
        batch["checksum_version"],
        batch["seal"],
        batch["seal_key_id"],
    )


def _totals(conn: psycopg.Connection[Row]) -> tuple[StatementTotals, tuple[str, ...]]:
    row = conn.execute(_TOTALS).fetchone()
    assert row is not None
    net = row["credit"] - row["debit"]
    totals = StatementTotals(
        row["postings"],
        row["late_postings"],
        row["receivable_as_cpo"],
        row["payable_as_emsp"],
        row["hub_fees"],
        row["rounding"],
        row["late_net"],
        row["debit"],
        row["credit"],
        net,
        direction_of(net),
    )
    roles = tuple(r for r, present in (("CPO", row["as_cpo"]), ("EMSP", row["as_emsp"])) if present)
    return totals, roles


def _vat(conn: psycopg.Connection[Row]) -> tuple[VatRow, ...]:
    with conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(_VAT_LINES)

        def parts() -> Iterator[tuple[LineRole, tuple[VatPart, ...]]]:
            while rows := cursor.fetchmany(LINES_FETCH_ROWS):
                for role, excl, incl, raw in rows:
                    yield LineRole(role), vat_parts(raw, excl, incl)

        return vat_rows_of(parts())


def _materialise(conn: psycopg.Connection[Row], batch_id: int) -> None:
    # ON COMMIT DROP alone is not enough: inside an outer transaction this is a savepoint
    conn.execute("DROP TABLE IF EXISTS pg_temp.statement_figures")
    conn.execute("CREATE TEMP TABLE statement_figures ON COMMIT DROP AS " + _FIGURES, (batch_id,))


def _marks(
    conn: psycopg.Connection[Row], header: StatementHeader, marks: Sequence[StatementMark]
) -> int:
    """The marks' texts by transaction in a temporary table the lines' COPY joins; returns
    how many lines they mark."""
    conn.execute("DROP TABLE IF EXISTS pg_temp.statement_line_marks")
    conn.execute(
        "CREATE TEMP TABLE statement_line_marks (transaction_id uuid PRIMARY KEY, text text)"
        " ON COMMIT DROP"
    )
    texts = marks_text(marks, header.period_kind, header.settlement_tz)
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO pg_temp.statement_line_marks VALUES (%s, %s)", list(texts.items())
        )
    row = conn.execute(_DISPUTED).fetchone()
    assert row is not None
    return int(row["n"])


def export_csv(
    conn: psycopg.Connection[Row],
    batch_id: int,
    out: TextIO,
    marks: Sequence[StatementMark] = (),
) -> int:
    """Write the statement of a closed batch as CSV, its lines marked with the disputes in
    `marks` (settlement.store.disputes.statement_marks, those the reader may see); returns
    the number of line rows.

    The batch's lines are materialised once in a temporary table (dropped at commit), then
    read three times: totals, VAT, and the lines streamed by COPY.
    """
    with conn.transaction():
        _materialise(conn, batch_id)
        totals, roles = _totals(conn)
        batch = _batch_row(conn, batch_id)
        header = _header(batch, roles)
        disputed = _marks(conn, header, marks)
        # the totals rows are the stored figures, as in the JSON (equal once it verifies)
        write_csv_head(header, stored_over(totals, stored_totals(batch)), _vat(conn), out, disputed)
        lines = 0
        with conn.cursor().copy(_LINES_COPY) as copy:
            for chunk in copy:
                text = bytes(chunk).decode()
                out.write(text)
                lines += text.count("\n")
        conn.execute("DROP TABLE pg_temp.statement_figures, pg_temp.statement_line_marks")
    assert lines == totals.postings, (lines, totals.postings)
    return lines


def statement_totals(
    conn: psycopg.Connection[Row], batch_id: int
) -> tuple[StatementTotals, tuple[VatRow, ...]]:
    """Totals and VAT rows computed in SQL (tests hold them equal to the Python build)."""
    with conn.transaction():
        _materialise(conn, batch_id)
        totals, _ = _totals(conn)
        vat = _vat(conn)
        conn.execute("DROP TABLE pg_temp.statement_figures")
    return totals, vat
