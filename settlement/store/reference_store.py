"""Reference data in PostgreSQL: partners and every version of tariffs, locations, agreements.

PostgreSQL keeps the full history (the compacted topics carry the latest version for other
readers). Inserting a version that is already stored is a no-op, so publishing twice is safe.
`roamclear tariffs|locations publish` and the OCPI receivers store through the same
functions (`store_tariff`, `delete_tariff`, `store_location`), each under an advisory lock
on the object's key, so a PATCH merged into the current location never loses a concurrent
one.

- Tariffs: a version per (key, last_updated); the same last_updated with other content is
  refused (`TariffVersionConflict`: rating picks versions by last_updated, so two would make
  the price depend on read order). A DELETE is a `tariff_lifecycle` row, and so is a PUT
  that brings a deleted tariff back. A version's `content_hash` is the one tariff hash,
  `settlement.rating.compile.tariff_content_hash`, which every booking records with the
  version that priced it, so a booking joins its `tariff_version` row by hash (invariant 7;
  migration 0015 brought rows stored under an older hash into line).
- Locations: every update that changes the document is a new revision, the highest one
  current; `location_zone` gets a row only when the time zone changes (it is what clearing
  reads).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from schemas.base import OcpiModel
from schemas.hub.agreement import Agreement
from schemas.hub.party import PartnerRole, PartyRef
from schemas.ocpi.location import Location
from schemas.ocpi.tariff import Tariff
from settlement.clearing.proof import PartnerKey
from settlement.clearing.reference import TariffLifecycleEvent
from settlement.rating.compile import tariff_content_hash
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
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING tariff_key
"""
_TARIFF_CLASH = """
SELECT content_hash FROM tariff_version
 WHERE tariff_key = %s AND last_updated = %s AND content_hash <> %s LIMIT 1
"""
_TARIFF_STATE = """
SELECT EXISTS (SELECT 1 FROM tariff_version WHERE tariff_key = %(key)s) AS known,
       coalesce((SELECT event = 'DELETED' FROM tariff_lifecycle WHERE tariff_key = %(key)s
                  ORDER BY at DESC LIMIT 1), false) AS deleted
"""
_INSERT_LIFECYCLE = """
INSERT INTO tariff_lifecycle (tariff_key, cpo, tariff_id, event, at) VALUES (%s, %s, %s, %s, %s)
"""
_CURRENT_TARIFF = """
SELECT body FROM tariff_version WHERE tariff_key = %s
 ORDER BY last_updated DESC, published_at DESC LIMIT 1
"""
_INSERT_LOCATION = """
INSERT INTO location_version (location_key, cpo, location_id, last_updated, time_zone, body)
VALUES (%s, %s, %s, %s, %s, %s) RETURNING revision
"""
_CURRENT_LOCATION = """
SELECT body FROM location_version WHERE location_key = %s ORDER BY revision DESC LIMIT 1
"""
_SAME_AS_CURRENT = """
SELECT body = %s AS same FROM location_version
 WHERE location_key = %s ORDER BY revision DESC LIMIT 1
"""
_CURRENT_ZONE = """
SELECT time_zone FROM location_zone WHERE location_key = %s ORDER BY revision DESC LIMIT 1
"""
_INSERT_ZONE = """
INSERT INTO location_zone (location_key, revision, cpo, location_id, time_zone)
VALUES (%s, %s, %s, %s, %s)
"""
# One namespace per kind of object, so a tariff and a location with one key never share a lock.
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
_INSERT_AGREEMENT = """
INSERT INTO agreement_version (agreement_id, version, cpo, emsp, currency, valid_from,
                               valid_to, body)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
SNAPSHOT_QUERIES = {
    "partners": "SELECT party_ref, role, name, created_at FROM partner ORDER BY party_ref",
    "tariffs": "SELECT body FROM tariff_version ORDER BY tariff_key, last_updated",
    "tariff_lifecycle": "SELECT cpo, tariff_id, event, at FROM tariff_lifecycle "
    "ORDER BY tariff_key, at",
    "locations": "SELECT cpo, location_id, time_zone FROM location_zone "
    "ORDER BY location_key, revision",
    "agreements": "SELECT body FROM agreement_version ORDER BY agreement_id, version",
    "partner_keys": "SELECT k.key_id, k.partner, k.public_key, r.revoked_at FROM partner_key k "
    "LEFT JOIN partner_key_revocation r USING (key_id) ORDER BY k.key_id",
}
# Changes whenever reference data clearing reads changes (every table here is append-only,
# so a count per table moves with every change): the agent reloads its cache when this
# fingerprint moves. location_zone, not location_version: an EVSE status update is no reason.
FINGERPRINT_QUERY = """
SELECT concat_ws('/',
    (SELECT count(*) FROM partner_version), (SELECT count(*) FROM tariff_version),
    (SELECT count(*) FROM tariff_lifecycle), (SELECT count(*) FROM location_zone),
    (SELECT count(*) FROM agreement_version), (SELECT count(*) FROM partner_key),
    (SELECT count(*) FROM partner_key_revocation))
    AS fingerprint
"""


class ReferenceConflict(Exception):
    """Root of what the reference store refuses to record."""


class TariffVersionConflict(ReferenceConflict):
    """A tariff version with this last_updated is stored already, with other content.
    Rating chooses versions by last_updated: the partner must send a changed tariff with a
    new last_updated (the stored version stays)."""


def _party(country_code: str, party_id: str) -> str:
    return str(PartyRef(country_code=country_code, party_id=party_id))


def add_partner(
    conn: psycopg.Connection[Row], party: PartyRef, role: PartnerRole, name: str
) -> None:
    """Register a partner, or record a new version of it when its role or name changed."""
    # PartnerRole(role): the role checked here, before PostgreSQL's CHECK refuses it
    values = {"party": str(party), "role": PartnerRole(role).value, "name": name}
    conn.execute(_INSERT_PARTNER, values)


def list_partners(conn: psycopg.Connection[Row]) -> list[Row]:
    return conn.execute(SNAPSHOT_QUERIES["partners"]).fetchall()


def partner_role(conn: psycopg.Connection[Row], party: PartyRef) -> PartnerRole | None:
    """The partner's role in force, None when it is not registered."""
    row = conn.execute("SELECT role FROM partner WHERE party_ref = %s", (str(party),)).fetchone()
    return None if row is None else PartnerRole(row["role"])


def stored_body(model: OcpiModel) -> dict[str, Any]:
    """What the partner sent, unknown fields included: no defaults it left out (a GET returns
    the object as received), no nulls (OCPI omits absent fields)."""
    return model.model_dump(mode="python", exclude_none=True, exclude_unset=True)


def tariff_row(tariff: Tariff) -> tuple[Any, ...]:
    cpo = _party(tariff.country_code, tariff.party_id)
    return (
        f"{cpo}*{tariff.id.upper()}",
        cpo,
        tariff.id,
        tariff.last_updated,
        tariff_content_hash(tariff),  # the hash every booking records (invariant 7)
        tariff.currency,
        tariff.start_date_time,
        tariff.end_date_time,
        jsonb_exact(stored_body(tariff)),
    )


def object_key(cpo: PartyRef | str, object_id: str) -> str:
    """`NL*TNM*AC-STANDARD`: the CPO and the object's id, upper case (ids are CiStrings)."""
    return f"{cpo}*{object_id.upper()}"


def _lock(conn: psycopg.Connection[Row], kind: str, key: str) -> None:
    # a transaction-scoped lock needs a transaction: the API's pool is in autocommit mode
    assert not conn.autocommit or conn.info.transaction_status is TransactionStatus.INTRANS
    conn.execute(_LOCK, (f"{kind}:{key}",))


@dataclass(frozen=True, slots=True)
class TariffStored:
    key: str
    created: bool  # the tariff was not current before (unknown, or deleted)
    new_version: bool  # this version was not stored before


def store_tariff(conn: psycopg.Connection[Row], tariff: Tariff, at: datetime) -> TariffStored:
    """Store a tariff version received at `at` (restoring a deleted tariff), or raise
    TariffVersionConflict. Runs in the caller's transaction."""
    row = tariff_row(tariff)
    key, cpo, tariff_id, last_updated, content_hash = row[:5]
    _lock(conn, "tariff", key)
    clash = conn.execute(_TARIFF_CLASH, (key, last_updated, content_hash)).fetchone()
    if clash is not None:
        raise TariffVersionConflict(
            f"tariff {key} last_updated {last_updated:%Y-%m-%dT%H:%M:%SZ} is stored already "
            "with other content: send a changed tariff with a new last_updated"
        )
    state = conn.execute(_TARIFF_STATE, {"key": key}).fetchone()
    assert state is not None
    inserted = conn.execute(_INSERT_TARIFF, row).fetchone() is not None
    if state["deleted"]:
        conn.execute(_INSERT_LIFECYCLE, (key, cpo, tariff_id, "RESTORED", at))
    return TariffStored(key, not state["known"] or state["deleted"], inserted)


class TariffDeletion(StrEnum):
    """What a DELETE of a tariff did."""

    DELETED = "deleted"
    ALREADY_DELETED = "already_deleted"  # nothing recorded: a repeated DELETE is harmless
    UNKNOWN = "unknown"  # no version of it was ever stored


def delete_tariff(
    conn: psycopg.Connection[Row], cpo: PartyRef, tariff_id: str, at: datetime
) -> TariffDeletion:
    """Record that the CPO deleted the tariff at `at` (its versions stay, for sessions that
    started before). Runs in the caller's transaction."""
    key = object_key(cpo, tariff_id)
    _lock(conn, "tariff", key)
    state = conn.execute(_TARIFF_STATE, {"key": key}).fetchone()
    assert state is not None
    if not state["known"]:
        return TariffDeletion.UNKNOWN
    if state["deleted"]:
        return TariffDeletion.ALREADY_DELETED
    conn.execute(_INSERT_LIFECYCLE, (key, str(cpo), tariff_id, "DELETED", at))
    return TariffDeletion.DELETED


def current_tariff(conn: psycopg.Connection[Row], cpo: PartyRef, tariff_id: str) -> Row | None:
    """The newest version of a tariff (its body as stored), None when unknown or deleted."""
    key = object_key(cpo, tariff_id)
    state = conn.execute(_TARIFF_STATE, {"key": key}).fetchone()
    if state is None or state["deleted"]:
        return None
    row: Row | None = conn.execute(_CURRENT_TARIFF, (key,)).fetchone()
    return None if row is None else row["body"]


def add_tariffs(conn: psycopg.Connection[Row], tariffs: Sequence[Tariff], at: datetime) -> int:
    """Store tariff versions received at `at`; returns how many were new."""
    return sum(store_tariff(conn, tariff, at).new_version for tariff in tariffs)


@dataclass(frozen=True, slots=True)
class LocationStored:
    key: str
    created: bool  # no version of the location was stored before
    revision: int | None  # None: the same document as the current version, nothing stored


def lock_location(conn: psycopg.Connection[Row], cpo: PartyRef, location_id: str) -> str:
    """Hold the location until the caller's transaction ends (read, merge, store); its key."""
    key = object_key(cpo, location_id)
    _lock(conn, "location", key)
    return key


def current_location(conn: psycopg.Connection[Row], cpo: PartyRef, location_id: str) -> Row | None:
    """The current Location document as stored, or None."""
    row = conn.execute(_CURRENT_LOCATION, (object_key(cpo, location_id),)).fetchone()
    return None if row is None else row["body"]


def store_location(conn: psycopg.Connection[Row], location: Location) -> LocationStored:
    """Store the Location as its current version, unless it is that already. Runs in the
    caller's transaction."""
    cpo = PartyRef(country_code=location.country_code, party_id=location.party_id)
    key = lock_location(conn, cpo, location.id)
    body = jsonb_exact(stored_body(location))
    current = conn.execute(_SAME_AS_CURRENT, (body, key)).fetchone()
    if current is not None and current["same"]:
        return LocationStored(key, False, None)
    row = (key, str(cpo), location.id, location.last_updated, location.time_zone, body)
    inserted = conn.execute(_INSERT_LOCATION, row).fetchone()
    assert inserted is not None
    zone = conn.execute(_CURRENT_ZONE, (key,)).fetchone()
    if zone is None or zone["time_zone"] != location.time_zone:
        conn.execute(
            _INSERT_ZONE, (key, inserted["revision"], str(cpo), location.id, location.time_zone)
        )
    return LocationStored(key, current is None, inserted["revision"])


def add_locations(conn: psycopg.Connection[Row], locations: Sequence[Location]) -> int:
    """Store locations as their current versions; returns how many changed."""
    return sum(store_location(conn, location).revision is not None for location in locations)


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

    # indexed by the parties' canonical text (str(PartyRef)), as the rows name them
    roles: dict[str, PartnerRole] = field(default_factory=dict)
    tariffs: dict[tuple[str, str], list[Tariff]] = field(default_factory=dict)
    tariff_ids_by_cpo: dict[str, list[str]] = field(default_factory=dict)
    lifecycles: dict[tuple[str, str], list[TariffLifecycleEvent]] = field(default_factory=dict)
    zones: dict[tuple[str, str], str | None] = field(default_factory=dict)
    agreements_by_pair: dict[tuple[str, str | None], list[Agreement]] = field(default_factory=dict)
    partner_keys: dict[str, PartnerKey] = field(default_factory=dict)

    def partner_role(self, party: PartyRef) -> PartnerRole | None:
        return self.roles.get(str(party))

    def tariff_versions(self, cpo: PartyRef, tariff_id: str) -> Sequence[Tariff]:
        return self.tariffs.get((str(cpo), tariff_id.upper()), ())

    def tariff_ids(self, cpo: PartyRef) -> Sequence[str]:
        return self.tariff_ids_by_cpo.get(str(cpo), ())

    def tariff_lifecycle(self, cpo: PartyRef, tariff_id: str) -> Sequence[TariffLifecycleEvent]:
        return self.lifecycles.get((str(cpo), tariff_id.upper()), ())

    def agreements(self, cpo: PartyRef, emsp: PartyRef | None) -> Sequence[Agreement]:
        return self.agreements_by_pair.get((str(cpo), None if emsp is None else str(emsp)), ())

    def location_zone(self, cpo: PartyRef, location_id: str) -> str | None:
        return self.zones.get((str(cpo), location_id.upper()))

    def partner_key(self, key_id: str) -> PartnerKey | None:
        return self.partner_keys.get(key_id)


def build_snapshot(rows: dict[str, list[Row]]) -> ReferenceSnapshot:
    """Index the rows of `SNAPSHOT_QUERIES` (bodies already decoded with exact Decimals)."""
    snapshot = ReferenceSnapshot()
    snapshot.roles = {row["party_ref"]: PartnerRole(row["role"]) for row in rows["partners"]}
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
    lifecycles: defaultdict[tuple[str, str], list[TariffLifecycleEvent]] = defaultdict(list)
    for row in rows["tariff_lifecycle"]:  # oldest first per tariff
        event = TariffLifecycleEvent(row["at"], row["event"] == "DELETED")
        lifecycles[(row["cpo"], row["tariff_id"].upper())].append(event)
    snapshot.lifecycles = dict(lifecycles)
    # later rows are newer revisions: the last zone wins
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
