"""Classifying a partner's list against the hub's CDRs (settlement.reconcile.match), and
the CSV report of it, without a database."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

from settlement.reconcile.match import Sides, check_invoice, keys_to_explain, reconcile
from settlement.reconcile.model import Component, HubCdr, KeyFacts, MissingCause
from settlement.reconcile.partner_file import InvoiceRecord, PartnerList, parse_partner_file
from settlement.reconcile.periods import PeriodLabel
from settlement.reconcile.report import REPORT_COLUMNS, report_csv

MARCH = datetime(2026, 3, 4, 12, tzinfo=UTC)
APRIL = datetime(2026, 4, 2, 12, tzinfo=UTC)
D = Decimal


def _cdr(key: str, excl: str, incl: str, *more: Component, end: datetime = MARCH) -> HubCdr:
    charge = Component("CHARGE", key, f"t-{key}", D(excl), D(incl))
    cpo = key.rsplit("*", 1)[0]
    return HubCdr(key, "EUR", cpo, "DE*EMP", end, (charge, *more))


def _theirs(text: str) -> PartnerList:
    parsed = parse_partner_file(text.encode(), "theirs.csv")
    assert isinstance(parsed, PartnerList), parsed
    return parsed


OURS = (
    _cdr("NL*TNM*A", "10.00", "12.10"),
    _cdr("NL*TNM*B", "5.00", "6.05"),
    # credited in full by NL*TNM*C-CR
    _cdr("NL*TNM*C", "7.25", "8.77",
         Component("REVERSAL", "NL*TNM*C-CR", "r", D("-7.25"), D("-8.77"))),
    # an accepted dispute of the eMSP took 1.21 incl. VAT off
    _cdr("NL*TNM*D", "3.00", "3.63",
         Component("ADJUSTMENT", "DISPUTE*7", "a", D("-1"), D("-1.21"))),
    _cdr("NL*TNM*E", "2.00", "2.42", end=APRIL),
)  # fmt: skip


def test_each_cdr_is_classified_exactly() -> None:
    theirs = _theirs(
        "id,currency,excl_vat,incl_vat\n"
        "A,EUR,10.00,12.10\n"  # matched
        "B,EUR,5.01,6.05\n"  # a cent more excl. VAT
        "C,EUR,7.25,8.77\n"  # the original ...
        "C-CR,EUR,-7.25,-8.77\n"  # ... and its credit: folded, nets 0
        "D,EUR,2.0,2.42\n"  # the dispute adjustment counted
        "X,EUR,1,1.21\n"  # never received
        "A,EUR,10,12.10\n"  # listed twice
    )
    found = reconcile(Sides("NL*TNM", theirs, OURS, {}), None, "UTC")
    assert [(m.cdr_key, m.their_rows) for m in found.matched] == [
        ("NL*TNM*A", ("line 2",)),
        ("NL*TNM*C", ("line 4", "line 5")),
        ("NL*TNM*D", ("line 6",)),
    ]
    (delta,) = found.amount_deltas
    assert (delta.cdr_key, delta.delta_excl_vat, delta.delta_incl_vat) == (
        "NL*TNM*B",
        D("0.01"),
        D(0),
    )
    assert delta.trace == "roamclear trace 'NL*TNM*B'" and delta.period == "2026-03"
    (extra,) = found.only_theirs
    assert (extra.cdr_key, extra.their_row, extra.explanation.cause) == (
        "NL*TNM*X",
        "line 7",
        MissingCause.NEVER_RECEIVED,
    )
    assert [(o.cdr_key, o.period) for o in found.only_ours] == [("NL*TNM*E", "2026-04")]
    assert [(d.cdr_id, d.where, d.first) for d in found.duplicates_in_theirs] == [
        ("A", "line 8", "line 2")
    ]
    assert not found.all_matched
    sums = {(p.period, p.currency): p for p in found.periods}
    march = sums["2026-03", "EUR"]
    assert (march.their_count, march.their_excl_vat) == (5, D("17.01"))
    assert (march.our_count, march.our_excl_vat, march.our_incl_vat) == (4, D(17), D("20.57"))
    assert (sums["2026-04", "EUR"].their_count, sums["2026-04", "EUR"].our_count) == (0, 1)
    assert sums["(none)", "EUR"].their_count == 1  # X: no period named, none of ours


def test_amounts_the_file_leaves_out_are_not_compared_and_currency_is() -> None:
    theirs = _theirs("id,currency,incl_vat\nA,EUR,12.1\nB,CHF,6.05\n")
    found = reconcile(Sides("NL*TNM", theirs, OURS[:2], {}), None, "UTC")
    assert [m.cdr_key for m in found.matched] == ["NL*TNM*A"]
    (delta,) = found.amount_deltas
    assert (delta.their_currency, delta.our_currency, delta.delta_incl_vat) == ("CHF", "EUR", 0)
    assert delta.delta_excl_vat is None and "currency differs" in delta.notes


def test_a_period_limits_both_sides_and_rows_of_other_periods_are_skipped() -> None:
    theirs = _theirs(
        "id,currency,excl_vat,period\nA,EUR,10,2026-03\nE,EUR,2,2026-04\nB,EUR,5,\nQ,EUR,1,\n"
    )
    march = PeriodLabel.parse("2026-03")
    ours = tuple(c for c in OURS if c.session_end < APRIL)  # what the store reads for March
    facts = {"NL*TNM*Q": KeyFacts("NL*TNM*Q", APRIL, True)}
    found = reconcile(Sides("NL*TNM", theirs, ours, facts), march, "UTC")
    assert found.period == "2026-03" and found.outside_period == ("line 3",)
    assert [m.cdr_key for m in found.matched] == ["NL*TNM*A", "NL*TNM*B"]
    (q,) = found.only_theirs
    assert (q.explanation.cause, q.explanation.message) == (
        MissingCause.BOOKED_OUTSIDE_PERIOD,
        "booked in period 2026-04",
    )


def test_why_a_cdr_is_only_in_theirs() -> None:
    facts = {
        "NL*TNM*OTHER": KeyFacts("NL*TNM*OTHER", MARCH, False),
        "NL*TNM*REJ": KeyFacts(
            "NL*TNM*REJ",
            rejections=(("no_tariff", "no tariff in force"), ("implausible", "too long")),
            refusals=(("schema_invalid", "bad body"),),
        ),
        "NL*TNM*DOOR": KeyFacts("NL*TNM*DOOR", refusals=(("schema_invalid", "id too long"),)),
        "DE*ABC*A": KeyFacts("DE*ABC*A", rejections=(("no_agreement", "none"),)),
    }
    ours = (*OURS, _cdr("BE*XYZ*A", "1", "1.21"))  # A of two CPOs: a bare id is ambiguous
    theirs = _theirs(
        "cpo,id,currency,excl_vat\n,OTHER,EUR,1\n,REJ,EUR,1\n,door,EUR,1\nDE*ABC,A,EUR,1\n"
        ",A,EUR,1\n"
    )
    wanted = [(row.cdr_id, row.cpo) for row in theirs.rows]
    assert keys_to_explain("NL*TNM", wanted, ours) == (
        "DE*ABC*A",
        "NL*TNM*DOOR",
        "NL*TNM*OTHER",
        "NL*TNM*REJ",
    )
    found = reconcile(Sides("NL*TNM", theirs, ours, facts), None, "UTC")
    causes = {
        o.cdr_key: (o.explanation.cause.value, o.explanation.reason_code, o.explanation.message)
        for o in found.only_theirs
    }
    assert causes == {
        "NL*TNM*OTHER": ("booked_for_other_parties", None,
                         "booked, but not as a CDR of this partner"),
        "NL*TNM*REJ": ("rejected", "implausible", "too long (1 earlier rejection(s))"),
        "NL*TNM*DOOR": ("refused_at_ocpi_door", "schema_invalid", "id too long"),
        "DE*ABC*A": ("rejected", "no_agreement", "none"),
        "?*A": ("ambiguous_id", None,
                "the partner has CDRs BE*XYZ*A, NL*TNM*A: give the CPO (cpo column)"),
    }  # fmt: skip


def test_an_invoice_total_against_the_hubs() -> None:
    record = InvoiceRecord(None, "IRR-1", "INV-1", ("A", "B", "C", "C-CR", "D", "Z"), (), None)
    facts = {"NL*TNM*Z": KeyFacts("NL*TNM*Z", rejections=(("no_tariff", "no tariff"),))}
    check = check_invoice("NL*TNM", record, OURS, facts, (D("18.55"), "EUR", "incl_vat"), "UTC")
    # A 12.10 + B 6.05 + C 8.77 − 8.77 + D 3.63 − 1.21 = 20.57; Z rejected
    assert (check.hub_total_incl_vat, check.hub_total_excl_vat) == (D("20.57"), D(17))
    assert check.delta == D("-2.02") and not check.all_matched
    z = check.lines[-1]
    assert z.cdr_key is None and z.explanation is not None
    assert (z.explanation.cause, z.explanation.reason_code) == (MissingCause.REJECTED, "no_tariff")
    cents = (_cdr("NL*TNM*F", "3.48", "4.2108"),)  # the invoice states 4.21: equal to the cent
    assert check_invoice("NL*TNM", InvoiceRecord(None, None, "I", ("F",), (), None), cents, {},
                         (D("4.21"), "EUR", "incl_vat"), "UTC").all_matched  # fmt: skip
    exact = InvoiceRecord(None, None, "INV-2", ("A", "B"), (), None)
    equal = check_invoice("NL*TNM", exact, OURS, {}, (D(15), "EUR", "excl_vat"), "UTC")
    assert equal.delta == 0 and equal.all_matched
    report = list(csv.reader(io.StringIO(report_csv(equal))))
    assert report[0] == list(REPORT_COLUMNS) and report[-1][0] == "invoice_total"
    assert report[-1][7] == "0.00"  # the delta, excl. VAT as the basis


def test_the_csv_report_lists_every_line_with_its_class() -> None:
    theirs = _theirs("id,currency,excl_vat\nA,EUR,10\nB,EUR,5.01\nX,EUR,1\nX,EUR,1\n")
    found = reconcile(Sides("NL*TNM", theirs, OURS[:3], {}), None, "UTC")
    rows = list(csv.DictReader(io.StringIO(report_csv(found))))
    assert [(r["class"], r["cdr_key"]) for r in rows] == [
        ("matched", "NL*TNM*A"),
        ("amount_delta", "NL*TNM*B"),
        ("only_theirs", "NL*TNM*X"),
        ("only_ours", "NL*TNM*C"),
        ("duplicate_in_theirs", "X"),
    ]
    assert rows[1]["delta_excl_vat"] == "0.01" and rows[1]["trace"] == "roamclear trace 'NL*TNM*B'"
    assert rows[2]["cause"] == "never_received" and rows[3]["our_excl_vat"] == "0.00"
    body = found.as_json()
    assert body["counts"] == {"matched": 1, "amount_deltas": 1, "only_theirs": 1, "only_ours": 1}
    assert body["amount_deltas"][0]["delta_excl_vat"] == "0.01"
