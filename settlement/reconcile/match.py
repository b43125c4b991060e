"""Matching a partner's list against the hub's CDRs: pure, the sides given as values.

Each of their rows is resolved to a CDR key: `cpo*id` when the row names the CPO; else the
one CDR of the partner with that id (as CPO or as eMSP); else `partner*id` (the partner as
the CPO). Rows that name one of the hub's CDRs (by its key, or a credit CDR's key, folded
into the CDR it credits) are summed per CDR and compared with its net; exactly equal in the
amounts the file gives, and the same currency, is a match, anything else an amount delta.
The hub's CDRs no row names are only ours; rows naming no CDR of the hub's are only theirs,
with the reason the store found (`KeyFacts`).

    >>> from datetime import datetime, UTC
    >>> from decimal import Decimal as D
    >>> from settlement.reconcile.model import Component, HubCdr
    >>> from settlement.reconcile.partner_file import parse_partner_file
    >>> listed = b"id,currency,excl_vat\\nCDR-1,EUR,7.26\\nCDR-9,EUR,1\\n"
    >>> theirs = parse_partner_file(listed, "x.csv")
    >>> end = datetime(2026, 3, 4, 12, tzinfo=UTC)
    >>> ours = (HubCdr("NL*TNM*CDR-1", "EUR", "NL*TNM", "DE*EMP", end,
    ...     (Component("CHARGE", "NL*TNM*CDR-1", "t1", D("7.25"), D("8.77")),)),)
    >>> found = reconcile(Sides("NL*TNM", theirs, ours, {}), None, "UTC")
    >>> [(d.cdr_key, d.delta_excl_vat) for d in found.amount_deltas]
    [('NL*TNM*CDR-1', Decimal('0.01'))]
    >>> [(o.cdr_key, o.explanation.cause.value) for o in found.only_theirs]
    [('NL*TNM*CDR-9', 'never_received')]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.party import PartyRef
from settlement.money import round_minor_unit
from settlement.reconcile.model import (
    AmountDelta,
    DuplicateRow,
    Explanation,
    HubCdr,
    InvoiceCheck,
    InvoiceLine,
    KeyFacts,
    Matched,
    MissingCause,
    OnlyOurs,
    OnlyTheirs,
    PeriodSums,
    Reconciliation,
)
from settlement.reconcile.partner_file import Duplicate, InvoiceRecord, PartnerList, TheirRow
from settlement.reconcile.periods import PeriodLabel

NO_PERIOD = "(none)"


@dataclass(frozen=True, slots=True)
class Sides:
    """Both sides: the partner's list and the hub's CDRs for the partner, with the facts the
    store found for the keys only their list names (`keys_to_explain`)."""

    partner: str
    theirs: PartnerList
    ours: tuple[HubCdr, ...]
    facts: Mapping[str, KeyFacts]


def trace_command(key: str) -> str:
    return f"roamclear trace '{key}'"


def _cdr_id(key: str) -> str:
    return key.split("*", 2)[2]


class _Index:
    """The hub's CDRs by every key a partner may list them by, and by bare id."""

    def __init__(self, ours: Iterable[HubCdr]) -> None:
        self.by_key: dict[str, HubCdr] = {}
        self.by_id: defaultdict[str, set[str]] = defaultdict(set)
        for cdr in ours:
            for key in cdr.own_keys:
                self.by_key[key] = cdr
                self.by_id[_cdr_id(key)].add(key)

    def resolve(self, partner: str, cdr_id: str, cpo: PartyRef | None) -> str | tuple[str, ...]:
        """The key a row means, or the keys it could mean when its bare id is ambiguous."""
        if cpo is not None:
            return f"{cpo}*{cdr_id}"
        candidates = sorted(self.by_id.get(cdr_id, ()))
        if len(candidates) == 1:
            return candidates[0]
        return f"{partner}*{cdr_id}" if not candidates else tuple(candidates)

    def find(
        self, partner: str, cdr_id: str, cpo: PartyRef | None
    ) -> tuple[str | tuple[str, ...], HubCdr | None]:
        """What `resolve` gives, and the hub's CDR it names (None: none of ours)."""
        resolved = self.resolve(partner, cdr_id, cpo)
        return resolved, self.by_key.get(resolved) if isinstance(resolved, str) else None


def keys_to_explain(
    partner: str, wanted: Iterable[tuple[str, PartyRef | None]], ours: Iterable[HubCdr]
) -> tuple[str, ...]:
    """The keys their (id, CPO) pairs name that none of `ours` has: the store looks these
    up (`KeyFacts`)."""
    index = _Index(ours)
    keys = (index.resolve(partner, cdr_id, cpo) for cdr_id, cpo in wanted)
    return tuple(sorted({k for k in keys if isinstance(k, str) and k not in index.by_key}))


def explain(facts: KeyFacts | None, kind: SettlementPeriod, time_zone: str) -> Explanation:
    """Why the hub has not got this key among the partner's CDRs compared, in priority order:
    a booking beats a rejection (a later record may have booked it), a rejection a refusal."""
    if facts is None:
        return Explanation(MissingCause.NEVER_RECEIVED, None, "no record, booking or refusal")
    if facts.booked_end is not None:
        if facts.booked_for_partner:
            label = PeriodLabel.of(facts.booked_end, kind, time_zone)
            return Explanation(
                MissingCause.BOOKED_OUTSIDE_PERIOD, None, f"booked in period {label}"
            )
        return Explanation(
            MissingCause.BOOKED_FOR_OTHERS, None, "booked, but not as a CDR of this partner"
        )
    if facts.rejections:
        code, message = facts.rejections[-1]
        more = len(facts.rejections) - 1
        told = f" ({more} earlier rejection(s))" if more else ""
        return Explanation(MissingCause.REJECTED, code, message + told)
    if facts.refusals:
        code, message = facts.refusals[-1]
        return Explanation(MissingCause.REFUSED_AT_DOOR, code, message)
    return Explanation(MissingCause.NEVER_RECEIVED, None, "no record, booking or refusal")


def reconcile(sides: Sides, period: PeriodLabel | None, time_zone: str) -> Reconciliation:
    """Classify every row and every CDR of the hub's; sums per period on both sides."""
    kind = _grouping(period, sides.theirs.rows)
    index = _Index(sides.ours)
    kept, outside = _in_period(sides.theirs.rows, period)
    groups: defaultdict[str, list[TheirRow]] = defaultdict(list)
    only_theirs: list[OnlyTheirs] = []
    for row in kept:
        resolved, cdr = index.find(sides.partner, row.cdr_id, row.cpo)
        if cdr is not None:
            groups[cdr.cdr_key].append(row)
            continue
        if isinstance(resolved, tuple):
            explanation = Explanation(
                MissingCause.AMBIGUOUS_ID,
                None,
                f"the partner has CDRs {', '.join(resolved)}: give the CPO (cpo column)",
            )
            key = f"?*{row.cdr_id}"
        else:
            explanation, key = explain(sides.facts.get(resolved), kind, time_zone), resolved
        only_theirs.append(
            OnlyTheirs(
                key, row.currency, row.amount_excl_vat, row.amount_incl_vat, row.where, explanation
            )
        )
    matched: list[Matched] = []
    deltas: list[AmountDelta] = []
    only_ours: list[OnlyOurs] = []
    for cdr in sorted(sides.ours, key=lambda c: c.cdr_key):
        label = PeriodLabel.of(cdr.session_end, kind, time_zone).text
        rows = groups.get(cdr.cdr_key)
        if rows is None:
            only_ours.append(_only_ours(cdr, label))
            continue
        found = _compare(cdr, rows, label)
        if isinstance(found, Matched):
            matched.append(found)
        else:
            deltas.append(found)
    return Reconciliation(
        partner=sides.partner,
        period=None if period is None else period.text,
        matched=tuple(matched),
        amount_deltas=tuple(deltas),
        only_theirs=tuple(sorted(only_theirs, key=lambda o: o.cdr_key)),
        only_ours=tuple(only_ours),
        duplicates_in_theirs=_duplicates(sides.theirs.duplicates),
        outside_period=tuple(row.where for row in outside),
        periods=_period_sums(kept, sides.ours, index, sides.partner, kind, time_zone),
        ignored_columns=sides.theirs.ignored_columns,
    )


def _grouping(period: PeriodLabel | None, rows: Sequence[TheirRow]) -> SettlementPeriod:
    """Sums per --period's kind, else per the kind their rows name, else per month."""
    if period is not None:
        return period.kind
    named = next((row.period for row in rows if row.period is not None), None)
    return SettlementPeriod.MONTHLY if named is None else named.kind


def _in_period(
    rows: Sequence[TheirRow], period: PeriodLabel | None
) -> tuple[list[TheirRow], list[TheirRow]]:
    """Rows naming another period than --period are left out; rows naming none stay."""
    if period is None:
        return list(rows), []
    kept = [row for row in rows if row.period is None or row.period == period]
    return kept, [row for row in rows if row.period is not None and row.period != period]


def _sum(values: Iterable[Decimal | None]) -> Decimal | None:
    """Their sum when every row gives the amount; None when any row leaves it out."""
    total = Decimal(0)
    for value in values:
        if value is None:
            return None
        total += value
    return total


def _compare(cdr: HubCdr, rows: Sequence[TheirRow], label: str) -> Matched | AmountDelta:
    excl = _sum(row.amount_excl_vat for row in rows)
    incl = _sum(row.amount_incl_vat for row in rows)
    currencies = sorted({row.currency for row in rows})
    same_currency = currencies == [cdr.currency]
    delta_excl = None if excl is None else excl - cdr.net_excl_vat
    delta_incl = None if incl is None else incl - cdr.net_incl_vat
    wheres = tuple(row.where for row in rows)
    if same_currency and not delta_excl and not delta_incl:
        return Matched(cdr.cdr_key, cdr.currency, cdr.net_excl_vat, cdr.net_incl_vat, wheres, label)
    return AmountDelta(
        cdr_key=cdr.cdr_key,
        their_currency="/".join(currencies),
        our_currency=cdr.currency,
        their_excl_vat=excl,
        their_incl_vat=incl,
        our_excl_vat=cdr.net_excl_vat,
        our_incl_vat=cdr.net_incl_vat,
        delta_excl_vat=delta_excl,
        delta_incl_vat=delta_incl,
        their_rows=wheres,
        period=label,
        notes=_notes(cdr) + (() if same_currency else ("currency differs",)),
        trace=trace_command(cdr.cdr_key),
    )


def _notes(cdr: HubCdr) -> tuple[str, ...]:
    """What besides the charge makes the hub's net: credits and dispute adjustments."""
    return tuple(
        f"{c.kind.lower()} {c.own_key}: {c.amount_excl_vat} excl. / {c.amount_incl_vat} incl."
        for c in cdr.components
        if c.kind != "CHARGE"
    )


def _only_ours(cdr: HubCdr, label: str) -> OnlyOurs:
    return OnlyOurs(
        cdr.cdr_key,
        cdr.currency,
        cdr.net_excl_vat,
        cdr.net_incl_vat,
        label,
        _notes(cdr),
        trace_command(cdr.cdr_key),
    )


def _duplicates(duplicates: Iterable[Duplicate]) -> tuple[DuplicateRow, ...]:
    return tuple(
        DuplicateRow(d.cdr_id if d.cpo is None else f"{d.cpo}*{d.cdr_id}", d.where, d.first)
        for d in duplicates
    )


@dataclass(slots=True)
class _Tally:
    their_count: int = 0
    their_excl_vat: Decimal = Decimal(0)
    their_incl_vat: Decimal = Decimal(0)
    our_count: int = 0
    our_excl_vat: Decimal = Decimal(0)
    our_incl_vat: Decimal = Decimal(0)


def _period_sums(
    rows: Sequence[TheirRow],
    ours: Iterable[HubCdr],
    index: _Index,
    partner: str,
    kind: SettlementPeriod,
    time_zone: str,
) -> tuple[PeriodSums, ...]:
    """Counts and sums per period and currency: theirs by the period a row names (else the
    period of the hub's CDR it matches, else none), ours by each CDR's end. A row without
    an amount adds nothing to that amount's sum."""
    tallies: defaultdict[tuple[str, str], _Tally] = defaultdict(_Tally)
    for row in rows:
        _, cdr = index.find(partner, row.cdr_id, row.cpo)
        if row.period is not None:
            label = row.period.text
        else:
            label = (
                NO_PERIOD if cdr is None else PeriodLabel.of(cdr.session_end, kind, time_zone).text
            )
        tally = tallies[label, row.currency]
        tally.their_count += 1
        tally.their_excl_vat += row.amount_excl_vat or Decimal(0)
        tally.their_incl_vat += row.amount_incl_vat or Decimal(0)
    for cdr in ours:
        tally = tallies[PeriodLabel.of(cdr.session_end, kind, time_zone).text, cdr.currency]
        tally.our_count += 1
        tally.our_excl_vat += cdr.net_excl_vat
        tally.our_incl_vat += cdr.net_incl_vat
    return tuple(
        PeriodSums(label, currency, **{f: getattr(t, f) for f in _Tally.__slots__})
        for (label, currency), t in sorted(tallies.items())
    )


def check_invoice(
    partner: str,
    record: InvoiceRecord,
    ours: Sequence[HubCdr],
    facts: Mapping[str, KeyFacts],
    invoice: tuple[Decimal, str, str],
    time_zone: str,
) -> InvoiceCheck:
    """The hub's total for the record's CDRs against `invoice` (amount, currency, basis
    `incl_vat` or `excl_vat`), the hub's total rounded to the currency's minor unit (half-up)
    as an invoice states it. Each listed id counts its own transactions: a charge with the
    dispute adjustments of it, a credit CDR its reversal; so an invoice listing both nets."""
    amount, currency, basis = invoice
    index = _Index(ours)
    lines: list[InvoiceLine] = []
    for cdr_id in record.cdr_ids:
        resolved, cdr = index.find(partner, cdr_id, None)
        if cdr is None or isinstance(resolved, tuple):
            explanation = (
                Explanation(MissingCause.AMBIGUOUS_ID, None, f"CDRs {', '.join(resolved)}")
                if isinstance(resolved, tuple)
                else explain(facts.get(resolved), SettlementPeriod.MONTHLY, time_zone)
            )
            lines.append(InvoiceLine(cdr_id, None, None, None, None, explanation))
            continue
        own = [
            c
            for c in cdr.components
            if c.own_key == resolved or (resolved == cdr.cdr_key and c.kind == "ADJUSTMENT")
        ]
        excl = sum((c.amount_excl_vat for c in own), Decimal(0))
        incl = sum((c.amount_incl_vat for c in own), Decimal(0))
        lines.append(InvoiceLine(cdr_id, resolved, cdr.currency, excl, incl, None))
    booked = [line for line in lines if line.currency == currency]
    total_excl = sum((line.amount_excl_vat or Decimal(0) for line in booked), Decimal(0))
    total_incl = sum((line.amount_incl_vat or Decimal(0) for line in booked), Decimal(0))
    rounded = round_minor_unit(total_incl if basis == "incl_vat" else total_excl, currency)
    return InvoiceCheck(
        partner=partner,
        invoice_id=record.invoice_id,
        record_id=record.record_id,
        record_owner=None if record.owner is None else str(record.owner),
        basis=basis,
        currency=currency,
        invoice_amount=amount,
        hub_total_excl_vat=total_excl,
        hub_total_incl_vat=total_incl,
        hub_total_rounded=rounded,
        delta=amount - rounded,
        lines=tuple(lines),
        other_currency=tuple(
            line.cdr_key for line in lines if line.cdr_key and line.currency != currency
        ),
        duplicates=_duplicates(record.duplicates),
    )
