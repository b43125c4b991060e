"""Reference data in PostgreSQL: partners and every version of tariffs, locations, agreements.

PostgreSQL keeps the full history (the compacted topics carry the latest version for other
readers). Inserting a version that is already stored is a no-op, so publishing twice is safe.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from schemas.hub.agreement import Agreement
from schemas.hub.party import PartyRef
from schemas.ocpi.location import Location
from schemas.ocpi.tariff import Tariff
from schemas.wire import to_ocpi_json
from settlement.clearing.proof import PartnerKey
from settlement.store.db import Row, jsonb_exact

# A new version only when role or name changed (every version is kept: migration 0005).
_INSERT_PARTNER = """
INSERT INTO partner_version (party_ref, version, role, name)
SELECT %(party)s, coalesce(max(version), 0) + 1, %(role)s, %(name)s
  FROM partner_version WHERE party_ref = %(party)s
HAVING NOT EXISTS (SELECT 1 FROM partner
                    WHERE party_ref = %(party)s AND role = %(role)s AND name = %(name)s)
ON CONFLICT DO NOTHING
"""
_INSERT_TARIFF = """
INSERT INTO tariff_version (tariff_key, cpo, tariff_id, last_updated, content_hash, currency,
                            valid_from, valid_to, body)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
_INSERT_LOCATION = """
INSERT INTO location_version (location_key, cpo, location_id, last_updated, time_zone, body)
VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
_INSERT_AGREEMENT = """
INSERT INTO agreement_version (agreement_id, version, cpo, emsp, currency, valid_from,
                               valid_to, body)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
SNAPSHOT_QUERIES = {
    "partners": "SELECT party_ref, role, name, created_at FROM partner ORDER BY party_ref",
    "tariffs": "SELECT body FROM tariff_version ORDER BY tariff_key, last_updated",
    "locations": "SELECT cpo, location_id, time_zone FROM location_version "
    "ORDER BY location_key, last_updated",
    "agreements": "SELECT body FROM agreement_version ORDER BY agreement_id, version",
    "partner_keys": "SELECT k.key_id, k.partner, k.public_key, r.revoked_at FROM partner_key k "
    "LEFT JOIN partner_key_revocation r USING (key_id) ORDER BY k.key_id",
}
# Changes whenever reference data changes (every table here is append-only, so a count per
# table moves with every change): the agent reloads its cache when this fingerprint moves.
FINGERPRINT_QUERY = """
SELECT concat_ws('/',
    (SELECT count(*) FROM partner_version), (SELECT count(*) FROM tariff_version),
    (SELECT count(*) FROM location_version), (SELECT count(*) FROM agreement_version),
    (SELECT count(*) FROM partner_key), (SELECT count(*) FROM partner_key_revocation))
    AS fingerprint
"""


def tariff_hash(tariff: Tariff) -> str:
    return hashlib.sha256(to_ocpi_json(tariff)).hexdigest()


def _party(country_code: str, party_id: str) -> str:
    return str(PartyRef(country_code=country_code, party_id=party_id))


def add_partner(conn: psycopg.Connection[Row], party: PartyRef, role: str, name: str) -> None:
    """Register a partner, or record a new version of it when its role or name changed."""
    conn.execute(_INSERT_PARTNER, {"party": str(party), "role": role, "name": name})


def list_partners(conn: psycopg.Connection[Row]) -> list[Row]:
    return conn.execute(SNAPSHOT_QUERIES["partners"]).fetchall()


def partner_role(conn: psycopg.Connection[Row], party: PartyRef) -> str | None:
    """The partner's role in force (CPO, EMSP or BOTH), None when it is not registered."""
    row = conn.execute("SELECT role FROM partner WHERE party_ref = %s", (str(party),)).fetchone()
    return None if row is None else str(row["role"])


def tariff_row(tariff: Tariff) -> tuple[Any, ...]:
    cpo = _party(tariff.country_code, tariff.party_id)
    return (
        f"{cpo}*{tariff.id.upper()}",
        cpo,
        tariff.id,
        tariff.last_updated,
        tariff_hash(tariff),
        tariff.currency,
        tariff.start_date_time,
        tariff.end_date_time,
        jsonb_exact(tariff.model_dump(mode="python", exclude_none=True)),
    )


def add_tariffs(conn: psycopg.Connection[Row], tariffs: Sequence[Tariff]) -> int:
    """Store tariff versions; returns how many were new."""
    with conn.cursor() as cursor:
        before = _count(cursor, "tariff_version")
        cursor.executemany(_INSERT_TARIFF, [tariff_row(t) for t in tariffs])
        return _count(cursor, "tariff_version") - before


def add_locations(conn: psycopg.Connection[Row], locations: Sequence[Location]) -> int:
    rows = []
    for location in locations:
        cpo = _party(location.country_code, location.party_id)
        rows.append(
            (
                f"{cpo}*{location.id.upper()}",
                cpo,
                location.id,
                location.last_updated,
                location.time_zone,
                jsonb_exact(location.model_dump(mode="python", exclude_none=True)),
            )
        )
    with conn.cursor() as cursor:
        before = _count(cursor, "location_version")
        cursor.executemany(_INSERT_LOCATION, rows)
        return _count(cursor, "location_version") - before


def add_agreements(conn: psycopg.Connection[Row], agreements: Sequence[Agreement]) -> int:
    rows = [
        (
            a.agreement_id,
            a.version,
            str(a.cpo),
            None if a.emsp is None else str(a.emsp),
            a.currency,
            a.valid_from,
            a.valid_to,
            jsonb_exact(a.model_dump(mode="python", exclude_none=True)),
        )
        for a in agreements
    ]
    with conn.cursor() as cursor:
        before = _count(cursor, "agreement_version")
        cursor.executemany(_INSERT_AGREEMENT, rows)
        return _count(cursor, "agreement_version") - before


def _count(cursor: psycopg.Cursor[Row], table: str) -> int:
    row = cursor.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
    assert row is not None
    return int(row["n"])


@dataclass(slots=True)
class ReferenceSnapshot:
    """All registered reference data, indexed for the clearing decision (a ReferenceView)."""

    roles: dict[str, str] = field(default_factory=dict)
    tariffs: dict[tuple[str, str], list[Tariff]] = field(default_factory=dict)
    tariff_ids_by_cpo: dict[str, list[str]] = field(default_factory=dict)
    zones: dict[tuple[str, str], str | None] = field(default_factory=dict)
    agreements_by_pair: dict[tuple[str, str | None], list[Agreement]] = field(default_factory=dict)
    partner_keys: dict[str, PartnerKey] = field(default_factory=dict)

    def partner_role(self, party: PartyRef) -> str | None:
        return self.roles.get(str(party))

    def tariff_versions(self, cpo: PartyRef, tariff_id: str) -> Sequence[Tariff]:
        return self.tariffs.get((str(cpo), tariff_id.upper()), ())

    def tariff_ids(self, cpo: PartyRef) -> Sequence[str]:
        return self.tariff_ids_by_cpo.get(str(cpo), ())

    def agreements(self, cpo: PartyRef, emsp: PartyRef | None) -> Sequence[Agreement]:
        return self.agreements_by_pair.get((str(cpo), None if emsp is None else str(emsp)), ())

    def location_zone(self, cpo: PartyRef, location_id: str) -> str | None:
        return self.zones.get((str(cpo), location_id.upper()))

    def partner_key(self, key_id: str) -> PartnerKey | None:
        return self.partner_keys.get(key_id)


def build_snapshot(rows: dict[str, list[Row]]) -> ReferenceSnapshot:
    """Index the rows of `SNAPSHOT_QUERIES` (bodies already decoded with exact Decimals)."""
    snapshot = ReferenceSnapshot()
    snapshot.roles = {row["party_ref"]: row["role"] for row in rows["partners"]}
    tariffs: defaultdict[tuple[str, str], list[Tariff]] = defaultdict(list)
    for row in rows["tariffs"]:
        tariff = Tariff.model_validate(row["body"])
        cpo = _party(tariff.country_code, tariff.party_id)
        tariffs[(cpo, tariff.id.upper())].append(tariff)
    snapshot.tariffs = dict(tariffs)
    by_cpo: defaultdict[str, list[str]] = defaultdict(list)
    for cpo, tariff_id in tariffs:
        by_cpo[cpo].append(tariff_id)
    snapshot.tariff_ids_by_cpo = dict(by_cpo)
    # later rows are newer versions (ORDER BY last_updated): the last zone wins
    snapshot.zones = {
        (row["cpo"], row["location_id"].upper()): row["time_zone"] for row in rows["locations"]
    }
    pairs: defaultdict[tuple[str, str | None], list[Agreement]] = defaultdict(list)
    for row in rows["agreements"]:
        agreement = Agreement.model_validate(row["body"])
        emsp = None if agreement.emsp is None else str(agreement.emsp)
        pairs[(str(agreement.cpo), emsp)].append(agreement)
    snapshot.agreements_by_pair = dict(pairs)
    snapshot.partner_keys = {
        row["key_id"]: PartnerKey(
            row["key_id"],
            PartyRef.parse(row["partner"]),
            bytes(row["public_key"]),
            row["revoked_at"],
        )
        for row in rows["partner_keys"]
    }
    return snapshot


def load_snapshot(conn: psycopg.Connection[Row]) -> ReferenceSnapshot:
    return build_snapshot(
        {name: conn.execute(query).fetchall() for name, query in SNAPSHOT_QUERIES.items()}
    )
