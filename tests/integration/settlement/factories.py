"""Short constructors for ledger rows: one balanced CDR transaction per ``book`` call."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from settlement.batches.seal import SealKeys
from settlement.keys import HubKey, HubKeyring

_counter = itertools.count(1)
TEST_KEYS = SealKeys.from_keyring(
    HubKeyring(HubKey.from_secret(b"roamclear test hub key, 32 bytes"))
)
"""Seal keys for tests that close and verify in-process (the hub key is never in PostgreSQL)."""
SEAL_KEY = TEST_KEYS.current


def at(text: str) -> datetime:
    """``at("2025-05-10 12:00")`` -> aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def book(
    conn: psycopg.Connection[Any],
    cpo: str,
    emsp: str,
    amount: str,
    fee: str = "0.1500",
    end: datetime | None = None,
    kind: str = "MONTHLY",
    currency: str = "EUR",
    vat: str | None = "21.0",
    fee_payer: str = "CPO",
    location: str | None = "LOC1",
    vat_breakdown: object = None,
) -> str:
    """A CHARGE: eMSP debited, CPO credited, hub:fees credited the fee; returns its id."""
    n = next(_counter)
    end = end or at("2025-05-10 12:00")
    gross, fee_amount = Decimal(amount), Decimal(fee)
    excl = (gross / Decimal("1.21")).quantize(Decimal("0.0001"))
    transaction_id = str(uuid.uuid4())
    rating: dict[str, object] = {}
    if vat is not None:
        rating["vat_breakdown"] = [{"vat": vat, "excl_vat": str(excl), "incl_vat": str(gross)}]
    if vat_breakdown is not None:  # as given, JSON numbers or malformed entries included
        rating["vat_breakdown"] = vat_breakdown
    from settlement.store.db import jsonb_exact

    # as clearing books it: from an archived record, whose outcome is this transaction
    archived = conn.execute(
        "INSERT INTO raw_event (topic, partition, \"offset\") VALUES ('test.cdr.submitted', 0, %s)"
        " RETURNING archive_id",
        (n,),
    ).fetchone()
    assert archived is not None
    archive_id = archived[0] if isinstance(archived, tuple) else archived["archive_id"]
    conn.execute(
        "INSERT INTO ledger_transaction (transaction_id, cdr_key, kind, content_hash, currency,"
        " cpo, emsp, session_start, session_end, location_id, energy_kwh, amount_excl_vat,"
        " amount_incl_vat, fee, rating, archive_id) VALUES (%s, %s, 'CHARGE', %s, %s, %s, %s,"
        " %s, %s, %s, 11.5, %s, %s, %s, %s, %s)",
        (
            transaction_id,
            f"{cpo}*T{n}",
            "0" * 64,
            currency,
            cpo,
            emsp,
            end - timedelta(minutes=45),
            end,
            location,
            excl,
            gross,
            fee_amount,
            jsonb_exact(rating),
            archive_id,
        ),
    )
    conn.execute(
        "INSERT INTO cdr_outcome (archive_id, outcome, transaction_id) VALUES (%s, 'LEDGERED', %s)",
        (archive_id, transaction_id),
    )
    emsp_owes = gross + fee_amount if fee_payer == "EMSP" else gross
    cpo_owed = gross if fee_payer == "EMSP" else gross - fee_amount
    legs = [(f"partner:{emsp}", "DEBIT", emsp_owes), (f"partner:{cpo}", "CREDIT", cpo_owed)]
    if fee_amount:
        legs.append(("hub:fees", "CREDIT", fee_amount))
    # one statement: the ledger checks each INSERT statement's transactions balance
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(legs))
    params = [
        x
        for account, side, value in legs
        for x in (transaction_id, account, side, value, currency, end, kind)
    ]
    conn.execute(
        "INSERT INTO ledger_posting (transaction_id, account, side, amount, currency,"
        f" value_time, settlement_period) VALUES {values}",
        params,
    )
    return transaction_id


def partner(conn: psycopg.Connection[Any], party: str, role: str = "BOTH") -> None:
    """Register a partner (a partner token is only made for a registered one)."""
    from schemas.hub.party import PartyRef
    from settlement.store.reference_store import add_partner

    add_partner(conn, PartyRef.parse(party), role, f"{party} test partner")
