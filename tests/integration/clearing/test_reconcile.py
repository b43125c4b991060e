"""`roamclear reconcile` against real PostgreSQL: CDRs booked through the real clearing batch
(a charge, its credit, a rejection), one settled dispute adjustment, then a partner's file
with one CDR missing, one extra and one off by a cent; each reported exactly, by the CLI
(`--json`, `--report`) and by the store and matcher (a period, an invoice record)."""

from __future__ import annotations

import asyncio
import csv
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app as cli
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from schemas.hub.party import PartyRef
from settlement.reconcile.match import check_invoice
from settlement.reconcile.model import MissingCause
from settlement.reconcile.partner_file import InvoiceRecord
from settlement.reconcile.periods import PeriodLabel
from settlement.store import disputes
from settlement.store.db import connect
from settlement.store.reconcile import read_sides
from tests.integration.clearing.helpers import (
    cdr_dict,
    envelope,
    mixed_batch,
    register_reference_data,
    submit,
)
from tests.integration.clearing.test_batch import _clear

pytestmark = pytest.mark.integration

TNM = PartyRef.parse("NL*TNM")
CREDITED, DISPUTED, CHARGED = (f"NL*TNM*CDR-2026-000{i}" for i in (1, 2, 3))


def _book(settings: Settings) -> dict[str, tuple[Decimal, Decimal]]:
    """The mixed batch cleared (CDR 1 charged and credited, 2 and 3 charged, CDR-NO-TARIFF
    rejected), then CDR 2's eMSP's dispute accepted by a 1.00 adjustment; the charges'
    amounts as booked."""
    assert settings.database_url
    register_reference_data(settings)
    raw, _ = mixed_batch()
    # NL*ABC submits a CDR in NL*TNM's name: rejected not_owner, and not NL*TNM's to see
    raw.append((b"NL*TNM*CDR-BY-ABC", envelope(cdr_dict(0, id="CDR-BY-ABC"), "NL*ABC")))
    asyncio.run(_clear(settings, submit(settings, raw)))
    with connect(settings.database_url) as conn:
        opened = disputes.open_dispute(conn, DISPUTED, "BE*EVB", "AMOUNT_INCORRECT", "1", "", "t")
        conn.execute(
            "SELECT dispute_accept_by_adjustment(%s, 1, 'cli:t', 'idle fee refunded')",
            (opened.dispute_id,),
        )
        rows = conn.execute(
            "SELECT cdr_key, amount_excl_vat, amount_incl_vat FROM ledger_transaction"
            " WHERE kind = 'CHARGE' AND cpo = 'NL*TNM'"
        ).fetchall()
    return {r["cdr_key"]: (r["amount_excl_vat"], r["amount_incl_vat"]) for r in rows}


def _their_file(tmp_path: Path, charged: dict[str, tuple[Decimal, Decimal]]) -> Path:
    """As the CPO lists March: CDR 1 and its credit, CDR 3 a cent high, CDR-NO-TARIFF (the
    hub rejected it); CDR 2 left out."""
    excl_1, incl_1 = charged[CREDITED]
    excl_3, incl_3 = charged[CHARGED]
    path = tmp_path / "tnm-march.csv"
    path.write_text(
        "CDR_ID,Currency,Total_Cost_Excl_VAT,Total_Cost_Incl_VAT,Period\n"
        f"CDR-2026-0001,EUR,{excl_1},{incl_1},2026-03\n"
        f"CDR-2026-0001-CR,EUR,-{excl_1},-{incl_1},2026-03\n"
        f"cdr-2026-0003,eur,{excl_3 + Decimal('0.01')},{incl_3},2026-03\n"
        "CDR-NO-TARIFF,EUR,1.00,1.21,2026-03\n",
        encoding="utf-8",
    )
    return path


def _check_cli(settings: Settings, path: Path, charged: dict[str, tuple[Decimal, Decimal]]) -> None:
    env = {
        "DATABASE_URL": settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "ROAMCLEAR_HOME": str(settings.home),
    }
    report = path.with_suffix(".report.csv")
    args = ["reconcile", "--partner", "nl*tnm", "--file", str(path), "--json"]
    result = CliRunner().invoke(cli, [*args, "--report", str(report)], env=env)
    assert result.exit_code == 1, result.output  # differences exist
    found = json.loads(result.stdout)
    assert found["counts"] == {"matched": 1, "amount_deltas": 1, "only_theirs": 1, "only_ours": 1}
    assert [m["cdr_key"] for m in found["matched"]] == [CREDITED]
    assert found["matched"][0]["amount_excl_vat"] == "0.0000"  # charge and credit net out
    (delta,) = found["amount_deltas"]
    assert (delta["cdr_key"], delta["delta_excl_vat"], delta["delta_incl_vat"]) == (
        CHARGED,
        "0.0100",
        "0.0000",
    )
    assert delta["trace"] == f"roamclear trace '{CHARGED}'" and delta["their_rows"] == ["line 4"]
    (extra,) = found["only_theirs"]
    assert (extra["cdr_key"], extra["explanation"]["cause"]) == ("NL*TNM*CDR-NO-TARIFF", "rejected")
    assert extra["explanation"]["reason_code"] == "no_tariff"
    (missing,) = found["only_ours"]
    excl_2, incl_2 = charged[DISPUTED]
    # the eMSP was credited 1.00 incl. VAT, excl. VAT in the CDR's proportion
    adjusted_excl = excl_2 - (excl_2 / incl_2).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    assert (missing["cdr_key"], missing["our_incl_vat"]) == (DISPUTED, str(incl_2 - 1))
    assert missing["our_excl_vat"] == str(adjusted_excl) and "DISPUTE*" in missing["notes"][0]
    (march,) = found["periods"]
    assert (march["period"], march["their_count"], march["our_count"]) == ("2026-03", 4, 3)
    assert found["duplicates_in_theirs"] == [] and found["all_matched"] is False
    lines = list(csv.DictReader(report.open(encoding="utf-8")))
    assert [(r["class"], r["cdr_key"]) for r in lines] == [
        ("matched", CREDITED),
        ("amount_delta", CHARGED),
        ("only_theirs", "NL*TNM*CDR-NO-TARIFF"),
        ("only_ours", DISPUTED),
    ]
    bad = path.with_name("bad.csv")
    bad.write_text('id,currency,excl_vat\nCDR-2026-0003,EUR,"3,49"\n', encoding="utf-8")
    refused = CliRunner().invoke(cli, ["reconcile", "--partner", "NL*TNM", "--file", str(bad)])
    assert refused.exit_code == 2 and "line 2, column 3 (excl_vat)" in refused.output


def test_a_partners_list_against_the_booked_ledger(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings
    charged = _book(settings)
    _check_cli(settings, _their_file(tmp_path, charged), charged)
    wanted = [("CDR-2026-0003", None), ("CDR-2026-0001-CR", None), ("NEVER-SENT", None)]
    wanted.append(("CDR-BY-ABC", None))
    with connect(role_url(settings, DbRole.READER)) as conn:
        april = PeriodLabel.parse("2026-04").window("UTC")
        none_in_april, facts = read_sides(conn, TNM, april, wanted)
        ours, no_facts = read_sides(conn, TNM, None, wanted[:2])
        _, invoice_facts = read_sides(conn, TNM, None, [("CDR-X", None)])
    # April holds none of them: each found booked in March, for the partner; one never sent
    assert none_in_april == () and no_facts == {}
    assert facts[CHARGED].booked_for_partner and facts[f"{CREDITED}-CR"].booked_end is not None
    assert "NL*TNM*NEVER-SENT" not in facts
    assert "NL*TNM*CDR-BY-ABC" not in facts  # NL*ABC's rejected record is not NL*TNM's
    with connect(settings.database_url or "") as conn:  # ... though the archive holds it
        (abc,) = conn.execute(
            "SELECT reason_code FROM rejection WHERE cdr_key = 'NL*TNM*CDR-BY-ABC'"
        ).fetchall()
    assert abc["reason_code"] == "not_owner"
    record = InvoiceRecord(TNM, "IRR-1", "INV-2026-03", ("CDR-2026-0003", "CDR-X"), (), None)
    _, incl_3 = charged[CHARGED]
    stated = incl_3.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)  # as an invoice has it
    check = check_invoice("NL*TNM", record, ours, invoice_facts, (stated, "EUR", "incl_vat"), "UTC")
    assert check.hub_total_incl_vat == incl_3 and check.delta == 0
    assert check.lines[1].explanation is not None
    assert check.lines[1].explanation.cause is MissingCause.NEVER_RECEIVED
    assert not check.all_matched  # CDR-X: the hub never received it
