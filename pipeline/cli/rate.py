"""``roamclear rate``: price one CDR file against its tariff and show or print the result.

    roamclear rate --cdr cdr.json                       # the CDR's embedded tariff
    roamclear rate --cdr cdr.json --tariff t.json --timezone Europe/Berlin --json
    roamclear rate --cdr cdr.json --explain             # a table of periods and components
    roamclear rate --cdr fragment.json --tariff t.json --lenient   # a CDR without identity or
                                                        # location details: says what it filled

Exit codes: 0 priced; 2 the CDR cannot be priced (``reason_code: message`` on stderr) or an
input file is schema-invalid (every violation on stderr). Never a silent zero.
The lead mounts it with ``register(app)`` (``app.command("rate")(rate)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from pipeline.cli.console import console, error_console
from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.ocpi.v211 import detect_cdr_version, parse_cdr_any, parse_tariff_any
from schemas.validation import SchemaInvalid
from settlement.money import to_decimal
from settlement.rating import RatedCdr, RatingError, rate_cdr
from settlement.rating.fragment import complete_for_pricing
from settlement.rating.report import rated_cdr_json
from settlement.rating.results import TOTAL_FIELDS

EXIT_UNPRICEABLE = 2

_stdout = console
_stderr = error_console


def _owner(text: str | None) -> PartyRef | None:
    if not text:
        return None
    country_code, _, party_id = text.partition("*")
    return PartyRef(country_code=country_code, party_id=party_id)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        _stderr.print(f"io_error: cannot read {path}: {error.strerror}")
        raise typer.Exit(EXIT_UNPRICEABLE) from error


def _schema_invalid(path: Path, error: SchemaInvalid) -> typer.Exit:
    _stderr.print(f"schema_invalid: {path}: {error}")
    for violation in error.violations:
        _stderr.print(f"  {violation}")
    return typer.Exit(EXIT_UNPRICEABLE)


def _lenient_cdr(path: Path) -> tuple[Cdr, tuple[str, ...]]:
    """A 2.2.1 CDR fragment completed for pricing, and the fields filled."""
    try:
        data = loads_exact(_read(path))
    except ValueError as error:
        _stderr.print(f"schema_invalid: {path}: not JSON ({error})")
        raise typer.Exit(EXIT_UNPRICEABLE) from error
    if not isinstance(data, dict) or detect_cdr_version(data) != "2.2.1":
        _stderr.print(f"lenient_refused: {path}: --lenient completes an OCPI 2.2.1 CDR object")
        raise typer.Exit(EXIT_UNPRICEABLE)
    completed = complete_for_pricing(data)
    try:
        return parse_cdr_any(completed.cdr), completed.filled
    except SchemaInvalid as error:
        raise _schema_invalid(path, error) from error


def explain_table(rated: RatedCdr) -> Table:
    """Periods and their components, then the totals (exact costs, rounded totals)."""
    table = Table(title=f"CDR {rated.cdr_id} · tariff {rated.tariff.id} · zone {rated.time_zone}")
    for column in ("period", "start (UTC)", "dimension", "element", "price", "vat %"):
        table.add_column(column)
    for column in ("volume", "billed", "excl VAT", "incl VAT"):
        table.add_column(column, justify="right")
    for period in rated.periods:
        start = period.start_date_time.strftime("%Y-%m-%d %H:%M:%S")
        for charge in period.charges:
            table.add_row(
                str(period.index),
                start,
                charge.dimension.value + (" (reservation)" if charge.reservation else ""),
                f"#{charge.element_index}",
                str(charge.price),
                "-" if charge.vat is None else str(charge.vat),
                str(charge.volume),
                str(charge.billed_volume),
                str(charge.cost.excl_vat),
                str(charge.cost.incl_vat),
            )
        for dimension in period.unpriced:
            table.add_row(str(period.index), start, dimension.value, "none (free)", *[""] * 6)
    table.add_section()
    for field in TOTAL_FIELDS:
        price = rated.totals.get(field)
        excl, incl = ("n/a", "n/a") if price is None else (str(price.excl_vat), str(price.incl_vat))
        table.add_row(field, "", "", "", "", "", "", "", excl, incl)
    return table


def rate(
    cdr: Path = typer.Option(..., "--cdr", help="CDR JSON file (OCPI 2.2.1 or 2.1.1)"),
    tariff: Path | None = typer.Option(None, "--tariff", help="Tariff JSON; default: embedded"),
    timezone: str | None = typer.Option(None, "--timezone", help="IANA zone, e.g. Europe/Berlin"),
    json_output: bool = typer.Option(False, "--json", help="print one JSON object"),
    explain: bool = typer.Option(False, "--explain", help="table of periods and components"),
    tolerance: str = typer.Option("0.01", "--tolerance", help="accepted delta per total"),
    owner: str | None = typer.Option(None, "--owner", help="CPO of 2.1.1 input, e.g. NL*TNM"),
    lenient: bool = typer.Option(
        False,
        "--lenient",
        help="fill what pricing does not need (identity, location details) and list it",
    ),
) -> None:
    """Price a CDR with the OCPI 2.2.1 tariff semantics and compare with its declared totals."""
    party = _owner(owner)
    filled: tuple[str, ...] = ()
    if lenient:
        parsed_cdr, filled = _lenient_cdr(cdr)
    else:
        try:
            parsed_cdr = parse_cdr_any(_read(cdr), owner=party)
        except SchemaInvalid as error:
            raise _schema_invalid(cdr, error) from error
    parsed_tariff = None
    if tariff is not None:
        try:
            parsed_tariff = parse_tariff_any(_read(tariff), owner=party)
        except SchemaInvalid as error:
            raise _schema_invalid(tariff, error) from error
    try:
        rated = rate_cdr(
            parsed_cdr, parsed_tariff, time_zone=timezone, tolerance=to_decimal(tolerance)
        )
    except RatingError as error:
        _stderr.print(f"{error.reason_code}: {error.message}")
        raise typer.Exit(EXIT_UNPRICEABLE) from error
    document: dict[str, Any] = rated_cdr_json(rated)
    if lenient:
        document["filled"] = list(filled)
        if not json_output:
            _stderr.print(
                "filled for pricing (placeholders, not the partner's): "
                + (", ".join(filled) or "nothing"),
                highlight=False,
            )
    if json_output:
        typer.echo(json.dumps(document, indent=2))
        return
    if explain:
        _stdout.print(explain_table(rated))
    total = rated.totals.total_cost
    verdict = "within tolerance" if document["discrepancy"] is None else "DISCREPANCY"
    _stdout.print(
        f"total_cost {total.excl_vat} excl. VAT / {total.incl_vat} incl. VAT "
        f"{rated.currency} ({verdict})"
    )


def register(root: typer.Typer) -> None:
    """Mount ``rate`` on the root ``roamclear`` app."""
    root.command("rate")(rate)
