"""A partner's own list of CDRs, from CSV or JSON bytes: rows, or every problem at once.

CSV (UTF-8, a BOM is fine; comma or semicolon separated, the header decides), one CDR a line:

    cdr_id,currency,amount_excl_vat,amount_incl_vat,period
    CDR-2026-0001,EUR,7.25,8.77,2026-03

Column names are case-insensitive; spaces and hyphens count as underscores; unknown columns
are ignored (and listed). Aliases, each naming one field (`COLUMNS`):

    cdr_id            id, cdr                      (required, or cdr_key)
    cdr_key           key                          CC*PID*ID, the hub's own key
    cpo               CC*PID of the CPO; or country_code and party_id columns
    currency          ISO 4217, e.g. EUR           (required)
    amount_excl_vat   total_cost_excl_vat, excl_vat, total_excl_vat
    amount_incl_vat   total_cost_incl_vat, incl_vat, total_incl_vat   (one amount at least)
    period            billing_period               2026-03, 2026-W10 or 2026-03-04

Amounts are decimals with a dot and no thousands separator (`1234.5`, `-7.25`): they become
Decimal, never float. `12,50` is refused, never read as 1250 or 12.5: its line, column and
why. JSON: a list of objects with the same fields, or OCPI CDR objects (`id`, `country_code`
and `party_id` as the CPO, `currency`, `total_cost.excl_vat`/`incl_vat`; 2.3.0's
`before_taxes` plus `taxes[].amount` too), optionally inside an OCPI response's `data`.
A JSON object with `invoice_id` and `cdrs` is an OCPI 2.3.0 InvoiceReconciliationRecord
(`InvoiceRecord`). The same CDR listed twice is kept once and reported (`Duplicate`).

    >>> parsed = parse_partner_file(b"ID;Currency;Excl_VAT\\nCDR-1;EUR;7,25\\n", "list.csv")
    >>> print(parsed.errors[0].where)
    line 2, column 3 (Excl_VAT)
    >>> print(parsed.errors[0].message)
    '7,25' has a decimal comma; write 7.25 (a dot, no thousands separator)
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from schemas.base import loads_exact
from schemas.hub.party import CdrKey, PartyRef
from settlement.money import minor_unit_exponent
from settlement.reconcile.periods import PeriodLabel

FILE_BYTES_MAX: Final = 512 * 1024 * 1024  # read whole: a larger list is split by --period
ROWS_MAX: Final = 2_000_000  # a year of a large partner's CDRs; a bigger file is split by period
ERRORS_MAX: Final = 200  # every problem at once, up to a screenful that is still read
CDR_ID_LENGTH_MAX: Final = 39  # OCPI CiString(36), 39 for a credit CDR's id

# field -> the column names that give it (normalised: lower case, underscores)
COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "cdr_id": ("cdr_id", "id", "cdr"),
    "cdr_key": ("cdr_key", "key"),
    "cpo": ("cpo",),
    "country_code": ("country_code",),
    "party_id": ("party_id",),
    "currency": ("currency",),
    "amount_excl_vat": ("amount_excl_vat", "total_cost_excl_vat", "excl_vat", "total_excl_vat"),
    "amount_incl_vat": ("amount_incl_vat", "total_cost_incl_vat", "incl_vat", "total_incl_vat"),
    "period": ("period", "billing_period"),
}
_FIELD_OF: Final = {alias: field for field, aliases in COLUMNS.items() for alias in aliases}
_DECIMAL: Final = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")
# 7,25 or 1.234,56: a decimal comma (with dots grouping thousands), as many locales write
_DECIMAL_COMMA: Final = re.compile(r"^[+-]?(\d+|\d{1,3}(\.\d{3})+),\d+$")


@dataclass(frozen=True, slots=True)
class FileError:
    """One problem: where (a line and column of a CSV, an item and field of JSON) and why."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


@dataclass(frozen=True, slots=True)
class TheirRow:
    """One CDR as the partner lists it. `cpo` is None when the file does not say."""

    where: str  # "line 4" or "item [3]"
    cdr_id: str  # upper case, as CDR keys hold it
    cpo: PartyRef | None
    currency: str
    amount_excl_vat: Decimal | None
    amount_incl_vat: Decimal | None
    period: PeriodLabel | None

    def key_for(self, cpo: PartyRef) -> str:
        return f"{self.cpo or cpo}*{self.cdr_id}"


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A CDR listed again after its first listing (the first one is the one compared)."""

    where: str
    first: str
    cdr_id: str
    cpo: PartyRef | None


@dataclass(frozen=True, slots=True)
class PartnerList:
    rows: tuple[TheirRow, ...]
    duplicates: tuple[Duplicate, ...]
    ignored_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    """An OCPI 2.3.0 InvoiceReconciliationRecord: an invoice and the CDR ids it covers."""

    owner: PartyRef | None  # country_code/party_id: who issued the record
    record_id: str | None
    invoice_id: str
    cdr_ids: tuple[str, ...]  # upper case, first listing of each
    duplicates: tuple[Duplicate, ...]
    last_updated: str | None


@dataclass(frozen=True, slots=True)
class FileErrors:
    errors: tuple[FileError, ...]


def parse_partner_file(data: bytes, name: str) -> PartnerList | InvoiceRecord | FileErrors:
    """The file's rows (or invoice record), or all its problems; JSON when `name` ends in
    .json or the content starts with `[` or `{`, CSV otherwise."""
    if len(data) > FILE_BYTES_MAX:
        return FileErrors(
            (FileError("", f"{len(data)} bytes, more than {FILE_BYTES_MAX}: split by period"),)
        )
    text = _text(data)
    if isinstance(text, FileError):
        return FileErrors((text,))
    if name.lower().endswith(".json") or text.lstrip()[:1] in ("[", "{"):
        return _parse_json(text)
    return _parse_csv(text)


def _text(data: bytes) -> str | FileError:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return FileError(f"line {line}", f"not UTF-8 (byte {data[exc.start]:#04x}); save as UTF-8")


class _Collector:
    """Rows and errors as they come, and duplicates by (CPO, id)."""

    def __init__(self) -> None:
        self.rows: list[TheirRow] = []
        self.errors: list[FileError] = []
        self.duplicates: list[Duplicate] = []
        self._first: dict[tuple[PartyRef | None, str], str] = {}

    def error(self, where: str, message: str) -> None:
        if len(self.errors) < ERRORS_MAX:
            self.errors.append(FileError(where, message))

    def add(self, row: TheirRow) -> None:
        seen = self._first.setdefault((row.cpo, row.cdr_id), row.where)
        if seen != row.where:
            self.duplicates.append(Duplicate(row.where, seen, row.cdr_id, row.cpo))
        else:
            self.rows.append(row)

    def result(self, ignored: Sequence[str] = ()) -> PartnerList | FileErrors:
        if self.errors:
            return FileErrors(tuple(self.errors))
        if not self.rows:
            return FileErrors((FileError("", "the file lists no CDR"),))
        return PartnerList(tuple(self.rows), tuple(self.duplicates), tuple(ignored))


def _normal(column: str) -> str:
    return re.sub(r"[\s-]+", "_", column.strip().lower())


def _parse_csv(text: str) -> PartnerList | FileErrors:
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    collector = _Collector()
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return FileErrors((FileError("line 1", f"not CSV: {exc}"),))
    if header is None:
        return FileErrors((FileError("", "the file is empty"),))
    columns = _columns(header, collector)
    if collector.errors:
        return FileErrors(tuple(collector.errors))
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(collector.rows) >= ROWS_MAX:
                collector.error(f"line {line}", f"more than {ROWS_MAX} rows: split by --period")
                break
            _csv_row(cells, line, header, columns, collector)
    except csv.Error as exc:
        collector.error(f"line {reader.line_num}", f"not CSV: {exc}")
    ignored = [c for c in header if _normal(c) not in _FIELD_OF]
    return collector.result(ignored)


def _columns(header: Sequence[str], collector: _Collector) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        field = _FIELD_OF.get(_normal(name))
        if field is None:
            continue
        if field in columns:
            collector.error(
                f"line 1, column {index + 1} ({name})",
                f"a second column for {field} (column {columns[field] + 1} is "
                f"{header[columns[field]]!r}): keep one",
            )
        columns[field] = index
    for problem in _missing_fields(columns):
        collector.error("line 1", problem)
    return columns


def _missing_fields(present: Mapping[str, object]) -> Iterator[str]:
    if "cdr_id" not in present and "cdr_key" not in present:
        yield "no CDR id column: name one cdr_id, id or cdr (or cdr_key for CC*PID*ID)"
    if "currency" not in present:
        yield "no currency column: name one currency"
    if "amount_excl_vat" not in present and "amount_incl_vat" not in present:
        yield (
            "no amount column: name one amount_excl_vat (or total_cost_excl_vat, excl_vat) "
            "or amount_incl_vat (or total_cost_incl_vat, incl_vat)"
        )
    if ("country_code" in present) != ("party_id" in present):
        yield "country_code and party_id go together (or give cpo as CC*PID)"


def _csv_row(
    cells: Sequence[str],
    line: int,
    header: Sequence[str],
    columns: Mapping[str, int],
    collector: _Collector,
) -> None:
    def where(field: str) -> str:
        index = columns[field]
        return f"line {line}, column {index + 1} ({header[index]})"

    if len(cells) != len(header):
        collector.error(f"line {line}", f"{len(cells)} cells, the header has {len(header)}")
        return
    values = {field: cells[index].strip() for field, index in columns.items()}
    _row(values, f"line {line}", where, collector)


def _row(
    values: Mapping[str, Any], row_where: str, where: Callable[[str], str], collector: _Collector
) -> None:
    """One row from its fields (text, or JSON values); `where(field)` says where a field is."""
    before = len(collector.errors)
    cdr_id, cpo = _identity(values, where, collector)
    currency = _currency(values.get("currency"), where("currency"), collector)
    amounts = {
        field: _amount(values.get(field), where(field), collector)
        for field in ("amount_excl_vat", "amount_incl_vat")
        if field in values
    }
    if (
        not any(amount is not None for amount in amounts.values())
        and len(collector.errors) == before
    ):
        collector.error(row_where, "no amount: give amount_excl_vat or amount_incl_vat")
    period = _period(values.get("period"), where, collector)
    if len(collector.errors) > before or cdr_id is None or currency is None:
        return
    collector.add(
        TheirRow(
            row_where,
            cdr_id,
            cpo,
            currency,
            amounts.get("amount_excl_vat"),
            amounts.get("amount_incl_vat"),
            period,
        )
    )


def _identity(
    values: Mapping[str, Any], where: Callable[[str], str], collector: _Collector
) -> tuple[str | None, PartyRef | None]:
    key_text = _text_value(values.get("cdr_key"))
    if key_text:
        try:
            key = CdrKey.parse(key_text)
        except ValueError as exc:
            collector.error(where("cdr_key"), f"{key_text!r} is not a CDR key CC*PID*ID ({exc})")
            return None, None
        return key.cdr_id, key.party
    cdr_id = _text_value(values.get("cdr_id"))
    if not cdr_id:
        collector.error(where("cdr_id"), "the CDR id is empty")
        return None, None
    if len(cdr_id) > CDR_ID_LENGTH_MAX:
        collector.error(where("cdr_id"), f"{cdr_id[:50]!r}…: longer than {CDR_ID_LENGTH_MAX}")
        return None, None
    return cdr_id.upper(), _cpo(values, where, collector)


def _cpo(
    values: Mapping[str, Any], where: Callable[[str], str], collector: _Collector
) -> PartyRef | None:
    cpo = _text_value(values.get("cpo"))
    country, party = _text_value(values.get("country_code")), _text_value(values.get("party_id"))
    field, text = ("cpo", cpo) if cpo else ("country_code", f"{country}*{party}")
    if not cpo and not (country or party):
        return None
    try:
        return PartyRef.parse(text)
    except ValueError as exc:
        collector.error(where(field), f"{text!r} is not a party CC*PID ({exc})")
        return None


def _text_value(value: Any) -> str:
    return value.strip() if isinstance(value, str) else "" if value is None else str(value)


def _currency(value: Any, where: str, collector: _Collector) -> str | None:
    text = _text_value(value).upper()
    if not _CURRENCY.match(text):
        collector.error(where, f"{_text_value(value)!r} is not a currency: three letters, e.g. EUR")
        return None
    try:
        minor_unit_exponent(text)
    except ValueError:
        collector.error(where, f"{text!r} is not an ISO 4217 currency code")
        return None
    return text


def _amount(value: Any, where: str, collector: _Collector) -> Decimal | None:
    """A JSON number is already exact (loads_exact); text must be a plain decimal."""
    if value is None or value == "":
        return None
    if isinstance(value, bool | float):
        collector.error(where, f"{value!r} is not an amount")
        return None
    if isinstance(value, Decimal | int):
        return Decimal(value)
    text = str(value).strip()
    if "," in text:
        dotted = text.replace(".", "").replace(",", ".")
        collector.error(
            where,
            f"{text!r} has a decimal comma; write {dotted} (a dot, no thousands separator)"
            if _DECIMAL_COMMA.match(text)
            else f"{text!r} has a comma: amounts take a decimal dot and no thousands separator",
        )
        return None
    if not _DECIMAL.match(text):
        collector.error(where, f"{text!r} is not a decimal amount (e.g. 7.25 or -7.25)")
        return None
    return Decimal(text)


def _period(value: Any, where: Any, collector: _Collector) -> PeriodLabel | None:
    text = _text_value(value)
    if not text:
        return None
    try:
        return PeriodLabel.parse(text)
    except ValueError as exc:
        collector.error(where("period"), str(exc))
        return None


def _parse_json(text: str) -> PartnerList | InvoiceRecord | FileErrors:
    try:
        document = loads_exact(text)
    except ValueError as exc:
        return FileErrors((FileError("", f"not JSON: {exc}"),))
    if isinstance(document, dict) and "data" in document and "status_code" in document:
        document = document["data"]  # an OCPI response, as GET /cdrs answers
    if isinstance(document, dict) and "invoice_id" in document:
        return _invoice(document)
    if not isinstance(document, list):
        return FileErrors(
            (
                FileError(
                    "",
                    "JSON must be a list of CDR objects, an OCPI response with one in "
                    "`data`, or an InvoiceReconciliationRecord (with `invoice_id`, `cdrs`)",
                ),
            )
        )
    collector = _Collector()
    for index, item in enumerate(document[: ROWS_MAX + 1]):
        place = f"item [{index}]"
        if index == ROWS_MAX:
            collector.error(place, f"more than {ROWS_MAX} items: split by --period")
        elif not isinstance(item, dict):
            collector.error(place, f"a {type(item).__name__}, not an object")
        else:
            _json_item(item, place, collector)
    return collector.result()


def _json_item(item: Mapping[str, Any], place: str, collector: _Collector) -> None:
    ocpi = isinstance(item.get("total_cost"), dict)
    values = _ocpi_fields(item) if ocpi else _named_fields(item)
    missing = list(_missing_fields(values))
    if missing:
        for problem in missing:
            collector.error(place, problem.replace(" column", " field").replace("name one", "give"))
        return

    def where(field: str) -> str:
        shown = _OCPI_PATHS.get(field, field) if ocpi else values.get(f"_{field}_name", field)
        return f"{place}, field {shown}"

    _row(values, place, where, collector)


_OCPI_PATHS: Final = {
    "cdr_id": "id",
    "amount_excl_vat": "total_cost.excl_vat",
    "amount_incl_vat": "total_cost.incl_vat",
}


def _named_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in item.items():
        field = _FIELD_OF.get(_normal(name))
        if field is not None:
            values[field] = value
            values[f"_{field}_name"] = name
    return values


def _ocpi_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    cost = item["total_cost"]
    excl = cost.get("excl_vat", cost.get("before_taxes"))
    incl = cost.get("incl_vat")
    taxes = cost.get("taxes")
    if incl is None and "before_taxes" in cost and isinstance(taxes, list):
        amounts = [t.get("amount") for t in taxes if isinstance(t, dict)]
        exact = [
            Decimal(a) for a in amounts if isinstance(a, Decimal | int) and not isinstance(a, bool)
        ]
        if isinstance(excl, Decimal | int) and len(exact) == len(taxes):
            incl = excl + sum(exact, Decimal(0))  # 2.3.0: after taxes = before + taxes
    return {
        "cdr_id": item.get("id"),
        "country_code": item.get("country_code"),
        "party_id": item.get("party_id"),
        "currency": item.get("currency"),
        "amount_excl_vat": excl,
        "amount_incl_vat": incl,
    }


def _invoice(document: Mapping[str, Any]) -> InvoiceRecord | FileErrors:
    """The record's fields as OCPI 2.3.0 names them (mod_invoice_reconciliation)."""
    collector = _Collector()
    invoice_id = _text_value(document.get("invoice_id"))
    if not invoice_id:
        collector.error("invoice_id", "the invoice id is empty")
    cdrs = document.get("cdrs")
    if not isinstance(cdrs, list) or not cdrs:
        collector.error("cdrs", "must be a non-empty list of CDR ids (OCPI card. +)")
        cdrs = []
    owner = None
    if document.get("country_code") or document.get("party_id"):
        owner = _cpo(document, lambda field: field, collector)
    for index, cdr_id in enumerate(cdrs):
        place = f"cdrs[{index}]"
        if not isinstance(cdr_id, str) or not cdr_id.strip():
            collector.error(place, f"{cdr_id!r} is not a CDR id")
        elif len(cdr_id.strip()) > CDR_ID_LENGTH_MAX:
            collector.error(place, f"{cdr_id[:50]!r}…: longer than {CDR_ID_LENGTH_MAX}")
        else:
            collector.add(TheirRow(place, cdr_id.strip().upper(), None, "", None, None, None))
    if collector.errors:
        return FileErrors(tuple(collector.errors))
    return InvoiceRecord(
        owner,
        _text_value(document.get("id")) or None,
        invoice_id,
        tuple(row.cdr_id for row in collector.rows),
        tuple(collector.duplicates),
        _text_value(document.get("last_updated")) or None,
    )
