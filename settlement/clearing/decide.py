"""The clearing decision for one decoded CDR: validate → dedupe → rate → allocate → book.

Pure: the caller supplies the time, the limits, the reference data and a view of what the
ledger already holds for the CDR's keys (PostgreSQL plus this batch's own bookings), and
gets back exactly one outcome (invariant 2): `Booked` with its ledger entry, `Duplicate` or
`Rejected`. settlement.clearing.batch decides a whole batch with it.

A credit CDR (credit=true) reverses the booked CDR it names in credit_reference_id, exactly
(the original's postings, amounts and VAT breakdown mirrored); it is not priced again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from schemas.hub.agreement import Agreement, SettlementBasis
from schemas.hub.ledger import LEDGER_AMOUNT_LIMIT, TransactionKind
from schemas.hub.party import CdrKey, PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.validation import Violation
from settlement import ledger
from settlement.allocation import allocate
from settlement.clearing.decode import Decoded
from settlement.clearing.entry import Amounts, LedgerEntry, LedgerView
from settlement.clearing.identity import content_hash
from settlement.clearing.outcome import Booked, ClaimedCdrKey, Duplicate, Outcome, Rejected
from settlement.clearing.plausibility import PlausibilityLimits, check_cdr
from settlement.clearing.reasons import Reason, Stage
from settlement.clearing.reference import ReferenceView, agreement_in_force, registered_tariff
from settlement.clearing.trace import ChargeTrace, ReversalTrace
from settlement.rating import RatedCdr, RatingError, rate_cdr

logger = logging.getLogger(__name__)


def clear(
    decoded: Decoded,
    now: datetime,
    limits: PlausibilityLimits,
    refs: ReferenceView,
    books: LedgerView,
    *,
    concurrent: bool = False,
) -> Outcome:
    """`concurrent`: `books` was read again after PostgreSQL refused this CDR's booking,
    so what it holds now was booked by another worker meanwhile (and the rejection says
    so)."""
    cdr = decoded.cdr
    key = CdrKey.of(cdr)
    reject = _rejecter(decoded.submitter, ClaimedCdrKey(str(key)))
    violations = check_cdr(cdr, decoded.submitter, now, limits)
    if violations:
        reason = Reason.NOT_OWNER if violations[0].code == "not_owner" else Reason.IMPLAUSIBLE
        text = "; ".join(str(v) for v in violations)
        return reject(reason, Stage.VALIDATE, text, violations)
    cpo = decoded.submitter
    emsp = PartyRef.of(cdr.cdr_token.country_code, cdr.cdr_token.party_id)
    cpo_role, emsp_role = refs.partner_role(cpo), refs.partner_role(emsp)
    if cpo_role is None or not cpo_role.as_cpo:
        return reject(Reason.UNKNOWN_SUBMITTER, Stage.VALIDATE, f"{cpo} is not a registered CPO")
    if emsp_role is None or not emsp_role.as_emsp:
        return reject(Reason.UNKNOWN_EMSP, Stage.VALIDATE, f"{emsp} is not a registered eMSP")

    try:
        cdr_hash = content_hash(cdr)
    except (TypeError, ValueError, RecursionError) as exc:
        # only in fields OCPI does not define (they are kept unvalidated) or unbounded
        # integers: 2**64 and more, lone surrogates, nesting beyond 250 levels
        return reject(
            Reason.SCHEMA_INVALID,
            Stage.VALIDATE,
            f"the CDR holds a value it cannot be identified by ({exc}): integers must fit in "
            "64 bits, text must be valid Unicode, and nesting stay within 250 levels",
        )
    existing = books.booking(key)
    if existing is not None:
        if existing.content_hash == cdr_hash:
            return Duplicate(cdr_key=key, transaction_id=existing.transaction_id)
        if concurrent:
            return reject(
                Reason.CDR_ID_CONFLICT,
                Stage.DEDUPE,
                f"CDR {key} was booked concurrently with other content",
            )
        return reject(
            Reason.CDR_ID_CONFLICT,
            Stage.DEDUPE,
            f"CDR {key} is already booked with other content (transaction "
            f"{existing.transaction_id}); CDRs are immutable: send a credit CDR instead",
        )
    if cdr.is_credit:
        return _reverse(cdr, key, cdr_hash, cpo, emsp, books, reject, concurrent)
    return _charge(cdr, key, cdr_hash, cpo, emsp, refs, reject)


class _Reject(Protocol):
    def __call__(
        self,
        reason: Reason | str,
        stage: Stage,
        message: str,
        violations: tuple[Violation, ...] = (),
    ) -> Rejected: ...


def _rejecter(submitter: PartyRef, cdr_key: ClaimedCdrKey) -> _Reject:
    def reject(
        reason: Reason | str, stage: Stage, message: str, violations: tuple[Violation, ...] = ()
    ) -> Rejected:
        return Rejected(reason, stage, message, violations, submitter, cdr_key)

    return reject


def _reverse(
    cdr: Cdr,
    key: CdrKey,
    cdr_hash: str,
    cpo: PartyRef,
    emsp: PartyRef,
    books: LedgerView,
    reject: _Reject,
    concurrent: bool,
) -> Outcome:
    credited = CdrKey.credited_key(cdr)
    assert credited is not None, "the schema requires credit_reference_id on a credit"
    original = books.booking(credited)
    if original is None:
        return reject(
            Reason.CREDIT_REFERENCE_UNKNOWN,
            Stage.DEDUPE,
            f"credit CDR {key} references {credited}, which is not booked",
        )
    if original.kind is not TransactionKind.CHARGE:
        return reject(Reason.CREDIT_OF_CREDIT, Stage.DEDUPE, f"{credited} is itself a reversal")
    if original.reversed_by is not None and concurrent:
        return reject(
            Reason.CREDIT_ALREADY_APPLIED,
            Stage.DEDUPE,
            f"the CDR credited by {key} was reversed concurrently",
        )
    if original.reversed_by is not None:
        return reject(
            Reason.CREDIT_ALREADY_APPLIED,
            Stage.DEDUPE,
            f"{credited} is already reversed by transaction {original.reversed_by}",
        )
    # a charge the ledger holds always has its record, unless clearing did not write it
    assert original.trace is not None, f"{credited} is booked without a rating record"
    transaction = ledger.reversal(
        key, cdr_hash, original.transaction_id, original.postings, cdr.end_date_time
    )
    entry = LedgerEntry(
        transaction,
        original.amounts.negated(),
        original.trace.settlement_period,
        ReversalTrace(original.transaction_id, original.trace),
    )
    return Booked(cdr, entry, cpo, emsp, None, None, None)


def _charge(
    cdr: Cdr,
    key: CdrKey,
    cdr_hash: str,
    cpo: PartyRef,
    emsp: PartyRef,
    refs: ReferenceView,
    reject: _Reject,
) -> Outcome:
    agreement = agreement_in_force(cpo, emsp, cdr.end_date_time, refs)
    if agreement is None:
        return reject(
            Reason.NO_AGREEMENT,
            Stage.ALLOCATE,
            f"no agreement between {cpo} and {emsp} (nor a {cpo} default) is valid at "
            f"{cdr.end_date_time:%Y-%m-%dT%H:%M:%SZ}",
        )
    if agreement.currency != cdr.currency:
        return reject(
            Reason.CURRENCY_MISMATCH,
            Stage.ALLOCATE,
            f"CDR in {cdr.currency}, agreement {agreement.agreement_id} in {agreement.currency}",
        )
    tariff = registered_tariff(cdr, cpo, refs)
    if tariff is None and not (agreement.allow_embedded_tariff and cdr.tariffs):
        return reject(
            Reason.NO_TARIFF,
            Stage.RATE,
            f"no registered tariff of {cpo} was in force at the session start "
            f"{cdr.start_date_time:%Y-%m-%dT%H:%M:%SZ} (agreement {agreement.agreement_id} "
            f"{'does not allow' if not agreement.allow_embedded_tariff else 'allows'} the "
            "CDR's embedded tariff)",
        )
    zone = refs.location_zone(cpo, cdr.cdr_location.id)
    try:
        rated = rate_cdr(cdr, tariff, time_zone=zone, tolerance=agreement.tolerance)
    except RatingError as exc:
        return reject(exc.reason_code, Stage.RATE, str(exc))
    except (ArithmeticError, ValueError) as exc:
        # e.g. a session in year 1 has no local time west of UTC: the engine's own fault or
        # an input it did not foresee, either way this CDR only; raised, it would stop the
        # worker on every redelivery of the batch
        logger.exception("rating %s failed", key)
        return reject(
            Reason.RATING_FAILED,
            Stage.RATE,
            f"the rating engine failed on this CDR ({type(exc).__name__}: {exc}); it is kept "
            "for `roamclear rejected retry` once the cause is fixed",
        )
    if not rated.comparison.within_tolerance:
        return reject(Reason.PRICE_DISCREPANCY, Stage.RATE, _discrepancy(rated, agreement))
    price = (
        rated.totals.total_cost
        if agreement.settles is SettlementBasis.HUB_COMPUTED
        else cdr.total_cost
    )
    incl = price.incl_vat if price.incl_vat is not None else price.excl_vat
    if price.excl_vat < 0 or incl < 0:
        return reject(
            Reason.IMPLAUSIBLE,
            Stage.ALLOCATE,
            f"a charge settles {price.excl_vat} excl. / {incl} incl. VAT {cdr.currency}: a "
            "negative amount can only come as a credit CDR reversing the original",
        )
    allocation = allocate(price.excl_vat, incl, agreement)
    amounts = (
        allocation.amount_excl_vat,
        allocation.amount_incl_vat,
        allocation.fee,
        allocation.emsp_owes,
        allocation.cpo_owed,
    )
    if any(abs(amount) >= LEDGER_AMOUNT_LIMIT for amount in amounts):
        # PostgreSQL would refuse the batch (numeric field overflow) on every redelivery
        return reject(
            Reason.IMPLAUSIBLE,
            Stage.ALLOCATE,
            f"the CDR settles {allocation.amount_incl_vat} {cdr.currency}, beyond the "
            f"ledger's range (below {LEDGER_AMOUNT_LIMIT:,.0f})",
        )
    transaction = ledger.charge(
        key, cdr_hash, cpo, emsp, allocation, cdr.currency, cdr.end_date_time
    )
    entry = LedgerEntry(
        transaction,
        Amounts(allocation.amount_excl_vat, allocation.amount_incl_vat, allocation.fee),
        agreement.settlement_period,
        ChargeTrace.of(cdr, rated, agreement, allocation),
    )
    return Booked(cdr, entry, cpo, emsp, rated, agreement, allocation, rated.time_zone)


def _discrepancy(rated: RatedCdr, agreement: Agreement) -> str:
    deltas = ", ".join(
        f"{delta.field} off by {delta.delta_excl_vat} excl. / {delta.delta_incl_vat} incl. VAT"
        for delta in rated.comparison.fields
        if not delta.within_tolerance
    )
    return (
        f"declared totals differ from the hub's price beyond the agreement's tolerance "
        f"{agreement.tolerance} {agreement.currency}: {deltas}"
    )
