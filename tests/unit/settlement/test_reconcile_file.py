"""A partner's CDR list parsed (settlement.reconcile.partner_file): forgiving in names,
strict in numbers, every problem at once with its line and column."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from schemas.hub.agreement import SettlementPeriod
from schemas.hub.party import PartyRef
from settlement.reconcile.partner_file import (
    FileErrors,
    InvoiceRecord,
    PartnerList,
    parse_partner_file,
)
from settlement.reconcile.periods import PeriodLabel


def _rows(data: bytes, name: str = "theirs.csv") -> PartnerList:
    parsed = parse_partner_file(data, name)
    assert isinstance(parsed, PartnerList), parsed
    return parsed


def _errors(data: bytes, name: str = "theirs.csv") -> list[str]:
    parsed = parse_partner_file(data, name)
    assert isinstance(parsed, FileErrors), parsed
    return [str(error) for error in parsed.errors]


def test_headers_are_case_insensitive_and_aliases_name_one_field() -> None:
    data = (
        "\ufeffCDR ID;Total-Cost-Excl-VAT;TOTAL_COST_INCL_VAT;Currency;Country_Code;Party_ID;"
        "Period;Remark\r\n"
        "cdr-1;7.25;8.7725;eur;nl;tnm;2026-03;first\r\n"
        "\r\n"
        "CDR-2;-1;;EUR;NL;TNM;;\r\n"
    ).encode()
    parsed = _rows(data)
    first, second = parsed.rows
    assert first.cdr_id == "CDR-1" and first.cpo == PartyRef.parse("NL*TNM")
    assert (first.amount_excl_vat, first.amount_incl_vat) == (Decimal("7.25"), Decimal("8.7725"))
    assert isinstance(first.amount_excl_vat, Decimal) and first.currency == "EUR"
    assert first.period == PeriodLabel.parse("2026-03")
    assert first.period.kind is SettlementPeriod.MONTHLY and first.where == "line 2"
    assert (second.amount_excl_vat, second.amount_incl_vat, second.period) == (
        Decimal(-1),
        None,
        None,
    )
    assert second.where == "line 4" and parsed.ignored_columns == ("Remark",)
    for alias in ("id", "cdr", "CDR_ID"):
        only = _rows(f"{alias},currency,amount_excl_vat\nX,EUR,1\n".encode()).rows[0]
        assert only.cdr_id == "X" and only.cpo is None
    keyed = _rows(b"Key,excl_vat,currency\nde*abc*k-1,0.5,CHF\n").rows[0]
    assert (keyed.cdr_id, str(keyed.cpo), keyed.currency) == ("K-1", "DE*ABC", "CHF")


def test_a_decimal_comma_is_refused_with_line_column_and_why() -> None:
    errors = _errors(b"id;currency;excl_vat;incl_vat\nA;EUR;7,25;1.234,56\nB;EUR;1,234.5;2\n")
    assert errors == [
        "line 2, column 3 (excl_vat): '7,25' has a decimal comma; write 7.25 (a dot, no "
        "thousands separator)",
        "line 2, column 4 (incl_vat): '1.234,56' has a decimal comma; write 1234.56 (a dot, "
        "no thousands separator)",
        "line 3, column 3 (excl_vat): '1,234.5' has a comma: amounts take a decimal dot and "
        "no thousands separator",
    ]
    # quoted in a comma-separated file: the same refusal, never 725 or 7.25 silently
    assert _errors(b'id,currency,excl_vat\nA,EUR,"7,25"\n')[0].startswith(
        "line 2, column 3 (excl_vat): '7,25' has a decimal comma"
    )


def test_bad_currencies_amounts_periods_and_columns_are_each_reported() -> None:
    errors = _errors(
        b"id,currency,excl_vat,period\n"
        b"A,EU,1,2026-03\n"
        b"B,XYZ,1,2026-03\n"
        b"C,EUR,1e3,2026-13\n"
        b"D,EUR,,2026-W10\n"
        b"E,EUR,1\n"
    )
    assert errors == [
        "line 2, column 2 (currency): 'EU' is not a currency: three letters, e.g. EUR",
        "line 3, column 2 (currency): 'XYZ' is not an ISO 4217 currency code",
        "line 4, column 3 (excl_vat): '1e3' is not a decimal amount (e.g. 7.25 or -7.25)",
        "line 4, column 4 (period): '2026-13' is not a period: month must be in 1..12",
        "line 5: no amount: give amount_excl_vat or amount_incl_vat",
        "line 6: 3 cells, the header has 4",
    ]
    assert _errors(b"cdr,price\nA,1\n") == [
        "line 1: no currency column: name one currency",
        "line 1: no amount column: name one amount_excl_vat (or total_cost_excl_vat, "
        "excl_vat) or amount_incl_vat (or total_cost_incl_vat, incl_vat)",
    ]
    assert _errors(b"id,cdr_id,currency,excl_vat\n") == [
        "line 1, column 2 (cdr_id): a second column for cdr_id (column 1 is 'id'): keep one"
    ]
    assert _errors(b"id,currency,excl_vat\n") == ["the file lists no CDR"]
    assert _errors(b"id,currency,excl_vat\nA,EUR,\xff\n") == [
        "line 2: not UTF-8 (byte 0xff); save as UTF-8"
    ]


def test_duplicates_are_kept_once_and_reported() -> None:
    parsed = _rows(b"id,currency,excl_vat\nA,EUR,1\nb,EUR,2\na,EUR,1\nB,EUR,3\n")
    assert [row.cdr_id for row in parsed.rows] == ["A", "B"]
    assert [(d.cdr_id, d.where, d.first) for d in parsed.duplicates] == [
        ("A", "line 4", "line 2"),
        ("B", "line 5", "line 3"),
    ]
    # the same id of two CPOs is two CDRs, not a duplicate
    two = _rows(b"cpo,id,currency,excl_vat\nNL*TNM,A,EUR,1\nDE*ABC,A,EUR,1\n")
    assert len(two.rows) == 2 and not two.duplicates


def test_json_lists_ocpi_cdrs_and_responses() -> None:
    named = b'[{"CDR_ID": "a", "Amount_Excl_VAT": 7.25, "currency": "EUR", "period": "2026-03-04"}]'
    row = _rows(named, "theirs.json").rows[0]
    assert row.amount_excl_vat == Decimal("7.25") and row.amount_excl_vat.as_tuple().exponent == -2
    assert row.period is not None and row.period.kind is SettlementPeriod.DAILY
    cdrs = [
        {"id": "CDR-1", "country_code": "NL", "party_id": "TNM", "currency": "EUR",
         "total_cost": {"excl_vat": 7.25, "incl_vat": 8.77}},
        {"id": "CDR-2", "country_code": "NL", "party_id": "TNM", "currency": "EUR",
         "total_cost": {"before_taxes": 4.00, "taxes": [{"name": "VAT", "amount": 0.84}]}},
    ]  # fmt: skip
    response = json.dumps({"data": cdrs, "status_code": 1000}).encode()
    first, second = _rows(response, "cdrs.json").rows
    assert (first.cdr_id, str(first.cpo), first.amount_incl_vat) == (
        "CDR-1",
        "NL*TNM",
        Decimal("8.77"),
    )
    assert (second.amount_excl_vat, second.amount_incl_vat) == (Decimal("4.00"), Decimal("4.84"))
    bad = json.dumps([{"id": "X", "currency": "EUR", "total_cost": {"excl_vat": "7,25"}}, 3])
    assert _errors(bad.encode(), "cdrs.json") == [
        "item [0], field total_cost.excl_vat: '7,25' has a decimal comma; write 7.25 (a dot, "
        "no thousands separator)",
        "item [1]: a int, not an object",
    ]
    assert _errors(b'[{"id": "X", "currency": "EUR", "excl_vat": true}]', "x.json") == [
        "item [0], field excl_vat: True is not an amount"
    ]
    assert _errors(b'{"id": 1}', "x.json")[0].startswith("JSON must be a list of CDR objects")


def test_an_ocpi_invoice_reconciliation_record() -> None:
    record = {
        "country_code": "nl",
        "party_id": "tnm",
        "id": "IRR-1",
        "invoice_id": "INV-2026-03",
        "cdrs": ["CDR-1", "cdr-2", "CDR-1"],
        "last_updated": "2026-04-01T00:00:00Z",
    }
    parsed = parse_partner_file(json.dumps(record).encode(), "record.json")
    assert isinstance(parsed, InvoiceRecord)
    assert (str(parsed.owner), parsed.record_id, parsed.invoice_id) == (
        "NL*TNM",
        "IRR-1",
        "INV-2026-03",
    )
    assert parsed.cdr_ids == ("CDR-1", "CDR-2")
    assert [(d.cdr_id, d.where, d.first) for d in parsed.duplicates] == [
        ("CDR-1", "cdrs[2]", "cdrs[0]")
    ]
    empty = parse_partner_file(b'{"invoice_id": "I", "cdrs": []}', "r.json")
    assert isinstance(empty, FileErrors)
    assert [str(e) for e in empty.errors] == [
        "cdrs: must be a non-empty list of CDR ids (OCPI card. +)"
    ]


@pytest.mark.parametrize(
    ("text", "kind", "shown"),
    [
        ("2026-03", SettlementPeriod.MONTHLY, "2026-03"),
        ("2026-w01", SettlementPeriod.WEEKLY, "2026-W01"),
        (" 2026-02-28 ", SettlementPeriod.DAILY, "2026-02-28"),
    ],
)
def test_period_labels(text: str, kind: SettlementPeriod, shown: str) -> None:
    label = PeriodLabel.parse(text)
    assert (label.kind, label.text) == (kind, shown)
    window = label.window("Europe/Amsterdam")
    assert PeriodLabel.of(window.start, kind, "Europe/Amsterdam") == label
    assert PeriodLabel.of(window.end, kind, "Europe/Amsterdam") != label


@pytest.mark.parametrize("text", ["2026", "2026-02-30", "2026-W54", "March"])
def test_not_a_period(text: str) -> None:
    with pytest.raises(ValueError, match="is not a period"):
        PeriodLabel.parse(text)
