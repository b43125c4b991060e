"""Statements from lines: totals, VAT breakdown and the figures' JSON form (pure).

``build_statement(header, lines)`` sums the lines; ``statement_json`` and ``summary_json``
give the machine form (decimals as strings, never floats), shared by the CLI, the CSV/PDF
renderers and the finance API.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final

from schemas.hub.ledger import Side, TransactionKind
from settlement.money import RATING_CONTEXT, sum_exact
from settlement.statements.model import (
    Direction,
    LineRole,
    Statement,
    StatementHeader,
    StatementLine,
    StatementTotals,
    StoredTotals,
    VatPart,
    VatRow,
)

# the rule the CSV's SQL is rendered from too (settlement.store.statements_csv). A line shows
# its transaction's amounts as booked: the ledger row holds them signed as a statement reads
# them (a REVERSAL's are its original's negated, settlement.clearing.entry.Amounts, and so is
# its VAT breakdown; an ADJUSTMENT's are signed by the dispute it settles).
SELF_BILLING_CPO: Final = (TransactionKind.CHARGE, Side.CREDIT)
"""Self-billing (partner both CPO and eMSP): the posting is the CPO side exactly when its
kind is the CHARGE and its side the CREDIT, or neither (a REVERSAL's DEBIT)."""


def role_of(partner: str, cpo: str, emsp: str, kind: TransactionKind, side: Side) -> LineRole:
    """The partner's role in a posting of a CDR transaction (or ROUNDING). The parties as
    the ledger rows name them, in canonical text (the CSV's SQL compares the same)."""
    if kind == TransactionKind.ROUNDING:
        return LineRole.ROUNDING
    if partner == cpo and partner != emsp:
        return LineRole.CPO
    if partner == emsp and partner != cpo:
        return LineRole.EMSP
    credits_cpo = (kind == SELF_BILLING_CPO[0]) == (side is SELF_BILLING_CPO[1])
    return LineRole.CPO if credits_cpo else LineRole.EMSP


def vat_parts(raw: object, excl_vat: Decimal, incl_vat: Decimal) -> tuple[VatPart, ...]:
    """``rating->'vat_breakdown'`` as parts (signed like the line: as booked). Absent or
    malformed (not a non-empty list, or any item without both amounts as finite decimals):
    one part with unknown rate carrying the line's own amounts. All or nothing: the
    well-formed items of a malformed breakdown would not say which rate the rest of the
    line's amount is at."""
    parts = _breakdown(raw)
    return parts or (VatPart(None, excl_vat, incl_vat),)


def _breakdown(raw: object) -> tuple[VatPart, ...]:
    """The parts of a well-formed breakdown; () when it is absent or malformed."""
    if not isinstance(raw, list):
        return ()
    parts = []
    for item in raw:
        if not isinstance(item, dict):
            return ()
        excl, incl = _vat_amount(item.get("excl_vat")), _vat_amount(item.get("incl_vat"))
        if excl is None or incl is None:
            return ()
        rate = item.get("vat")
        parts.append(VatPart(None if rate is None else str(rate), excl, incl))
    return tuple(parts)


def _vat_amount(value: object) -> Decimal | None:
    """A breakdown amount: a JSON string or number (read as an exact Decimal, see
    settlement.store.db) that is a finite decimal."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def direction_of(net: Decimal) -> Direction:
    if net > 0:
        return Direction.HUB_PAYS_PARTNER
    if net < 0:
        return Direction.PARTNER_PAYS_HUB
    return Direction.NOTHING_DUE


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum_exact(list(values))


class Figure(StrEnum):
    """A line's figure a statement total sums."""

    GROSS = "gross"  # amount_incl_vat, signed (negative for a reversal)
    FEE_PAID = "fee_paid"  # the hub fee this partner paid on the line
    NET = "net"  # credit minus debit on the partner's account

    def of(self, line: StatementLine) -> Decimal:
        if self is Figure.GROSS:
            return line.amount_incl_vat
        if self is Figure.FEE_PAID:
            return line.fee_paid
        return line.net


@dataclass(frozen=True, slots=True)
class Fold:
    """A statement total: one figure summed over the lines of some roles."""

    roles: frozenset[LineRole]
    figure: Figure


# The totals by role, one definition for the statement built in Python and the CSV's SQL
# (settlement.store.statements_csv renders its FILTERs from it).
TOTAL_FOLDS: Final[Mapping[str, Fold]] = {
    "receivable_as_cpo": Fold(frozenset({LineRole.CPO}), Figure.GROSS),
    "payable_as_emsp": Fold(frozenset({LineRole.EMSP}), Figure.GROSS),
    "hub_fees": Fold(frozenset({LineRole.CPO, LineRole.EMSP}), Figure.FEE_PAID),
    "rounding": Fold(frozenset({LineRole.ROUNDING}), Figure.NET),
}


def _fold(lines: Sequence[StatementLine], fold: Fold) -> Decimal:
    return _sum(fold.figure.of(line) for line in lines if line.role in fold.roles)


def totals_of(lines: Sequence[StatementLine]) -> StatementTotals:
    debit = _sum(line.amount for line in lines if line.side is Side.DEBIT)
    credit = _sum(line.amount for line in lines if line.side is Side.CREDIT)
    totals = StatementTotals(
        postings=len(lines),
        late_postings=sum(1 for line in lines if line.late),
        receivable_as_cpo=_fold(lines, TOTAL_FOLDS["receivable_as_cpo"]),
        payable_as_emsp=_fold(lines, TOTAL_FOLDS["payable_as_emsp"]),
        hub_fees=_fold(lines, TOTAL_FOLDS["hub_fees"]),
        rounding=_fold(lines, TOTAL_FOLDS["rounding"]),
        late_adjustments=_sum(line.net for line in lines if line.late),
        debit=debit,
        credit=credit,
        net_amount=RATING_CONTEXT.subtract(credit, debit),
        direction=direction_of(RATING_CONTEXT.subtract(credit, debit)),
    )
    identity = totals.receivable_as_cpo - totals.payable_as_emsp - totals.hub_fees + totals.rounding
    assert identity == totals.net_amount, ("statement identity broken", totals)
    return totals


def vat_rows(lines: Iterable[StatementLine]) -> tuple[VatRow, ...]:
    return vat_rows_of((line.role, line.vat_breakdown) for line in lines)


def vat_rows_of(lines: Iterable[tuple[LineRole, Iterable[VatPart]]]) -> tuple[VatRow, ...]:
    """The VAT table: each line's parts summed per role and rate, rounding lines left out.
    The one rule for every format (the CSV feeds it the lines it reads from SQL)."""
    sums: defaultdict[tuple[LineRole, str | None], list[Decimal]] = defaultdict(
        lambda: [Decimal(0), Decimal(0)]
    )
    for role, parts in lines:
        if role is LineRole.ROUNDING:
            continue
        for part in parts:
            entry = sums[(role, part.vat)]
            entry[0] = RATING_CONTEXT.add(entry[0], part.excl_vat)
            entry[1] = RATING_CONTEXT.add(entry[1], part.incl_vat)
    ordered = sorted(sums.items(), key=lambda item: (item[0][0].value, item[0][1] or ""))
    return tuple(VatRow(role, vat, excl, incl) for (role, vat), (excl, incl) in ordered)


def build_statement(header: StatementHeader, lines: Sequence[StatementLine]) -> Statement:
    ordered = tuple(sorted(lines, key=lambda line: line.posting_id))
    return Statement(header, totals_of(ordered), vat_rows(ordered), ordered)


def with_stored_totals(statement: Statement, stored: StoredTotals) -> Statement:
    """The statement with the totals the closer stored in place of those summed from the
    lines. Equal when the statement verifies; when it does not, the closed figures stand
    and the verification says where the ledger now differs."""
    return replace(statement, totals=stored_over(statement.totals, stored))


def stored_over(totals: StatementTotals, stored: StoredTotals) -> StatementTotals:
    """``totals`` with every figure the batch row stores taken from the row (receivable,
    payable and fees are not stored: they stay the lines' sums)."""
    net = RATING_CONTEXT.subtract(stored.credit, stored.debit)
    return replace(
        totals,
        postings=stored.postings,
        late_postings=stored.late_postings,
        debit=stored.debit,
        credit=stored.credit,
        rounding=stored.rounding,
        late_adjustments=stored.late_net,
        net_amount=net,
        direction=direction_of(net),
    )


def roles_of(lines: Iterable[StatementLine]) -> tuple[str, ...]:
    found = {line.role for line in lines if line.role is not LineRole.ROUNDING}
    return tuple(role.value for role in (LineRole.CPO, LineRole.EMSP) if role in found)


def _text(value: Decimal) -> str:
    return str(value)


def totals_json(totals: StatementTotals) -> dict[str, Any]:
    return {
        "postings": totals.postings,
        "late_postings": totals.late_postings,
        "receivable_as_cpo": _text(totals.receivable_as_cpo),
        "payable_as_emsp": _text(totals.payable_as_emsp),
        "hub_fees": _text(totals.hub_fees),
        "rounding": _text(totals.rounding),
        "late_adjustments": _text(totals.late_adjustments),
        "debit": _text(totals.debit),
        "credit": _text(totals.credit),
        "net_amount": _text(totals.net_amount),
        "direction": totals.direction.value,
    }


def header_json(header: StatementHeader) -> dict[str, Any]:
    return {
        "id": header.batch_id,
        "partner": header.partner,
        "roles": list(header.roles),
        "currency": header.currency,
        "period_kind": header.period_kind.value,
        "period_start": header.period_start.isoformat(),
        "period_end": header.period_end.isoformat(),
        "settlement_tz": header.settlement_tz,
        "state": header.state.value,
        "checksum": header.checksum,
        "checksum_version": header.checksum_version,
        "seal": header.seal,
        "seal_key_id": header.seal_key_id,
        "created_at": header.created_at.isoformat(),
        "closed_at": None if header.closed_at is None else header.closed_at.isoformat(),
    }


def line_json(line: StatementLine) -> dict[str, Any]:
    return {
        "posting_id": line.posting_id,
        "transaction_id": line.transaction_id,
        "kind": line.kind.value,
        "cdr_key": line.cdr_key,
        "role": line.role.value,
        "counterparty": line.counterparty,
        "session_start": line.session_start.isoformat(),
        "session_end": line.session_end.isoformat(),
        "location_id": line.location_id,
        "energy_kwh": _text(line.energy_kwh),
        "amount_excl_vat": _text(line.amount_excl_vat),
        "amount_incl_vat": _text(line.amount_incl_vat),
        "fee": _text(line.fee),
        "fee_paid": _text(line.fee_paid),
        "side": line.side.value,
        "amount": _text(line.amount),
        "net": _text(line.net),
        "late": line.late,
    }


def statement_json(statement: Statement, lines: bool = True) -> dict[str, Any]:
    body = header_json(statement.header)
    body["net_amount"] = _text(statement.totals.net_amount)
    body["postings"] = statement.totals.postings
    body["totals"] = totals_json(statement.totals)
    body["vat_breakdown"] = [
        {
            "role": row.role.value,
            "vat": row.vat,
            "excl_vat": _text(row.excl_vat),
            "incl_vat": _text(row.incl_vat),
        }
        for row in statement.vat
    ]
    if lines:
        body["lines"] = [line_json(line) for line in statement.lines]
    return body
