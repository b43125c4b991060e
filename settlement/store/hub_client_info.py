"""HubClientInfo in PostgreSQL (migration 0017): every partner's ClientInfo (view
hub_client_info), the still-alive checks' changes of reachability, and the ClientInfo pushes
each connected party accepted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import psycopg

from schemas.ocpi.types import format_datetime
from settlement.store.db import Row

# A partner registered as both is one ClientInfo (the object is keyed by country code and
# party id alone); it is reported as a CPO, the role whose objects others receive from it.
OCPI_ROLE: Final = {"CPO": "CPO", "EMSP": "EMSP", "BOTH": "CPO"}


class ConnectionStatus(StrEnum):
    CONNECTED = "CONNECTED"
    OFFLINE = "OFFLINE"
    PLANNED = "PLANNED"
    SUSPENDED = "SUSPENDED"


@dataclass(frozen=True, slots=True)
class ClientInfo:
    partner: str  # CC*PID
    role: str  # the partner's registered role: CPO, EMSP or BOTH
    status: ConnectionStatus
    last_updated: datetime

    def as_ocpi(self) -> dict[str, Any]:
        """The OCPI 2.2.1 ClientInfo object."""
        country_code, party_id = self.partner.split("*")
        return {
            "party_id": party_id,
            "country_code": country_code,
            "role": OCPI_ROLE[self.role],
            "status": self.status.value,
            "last_updated": format_datetime(self.last_updated),
        }


_CLIENT_INFOS: Final = (
    "SELECT partner, role, status, last_updated FROM hub_client_info ORDER BY partner"
)


def _info(row: Row) -> ClientInfo:
    return ClientInfo(
        row["partner"], row["role"], ConnectionStatus(row["status"]), row["last_updated"]
    )


async def client_infos(conn: psycopg.AsyncConnection[Row]) -> list[ClientInfo]:
    """Every partner's ClientInfo, by party."""
    cursor = await conn.execute(_CLIENT_INFOS)
    return [_info(row) for row in await cursor.fetchall()]


def client_infos_of(conn: psycopg.Connection[Row]) -> list[ClientInfo]:
    """`client_infos`, for the API's synchronous connections."""
    return [_info(row) for row in conn.execute(_CLIENT_INFOS).fetchall()]


async def status_of(conn: psycopg.AsyncConnection[Row], partner: str) -> ConnectionStatus | None:
    cursor = await conn.execute("SELECT status FROM hub_client_info WHERE partner = %s", (partner,))
    row = await cursor.fetchone()
    return None if row is None else ConnectionStatus(row["status"])


async def pushed(conn: psycopg.AsyncConnection[Row]) -> set[tuple[str, str, datetime]]:
    """(receiver, subject, last_updated) of every ClientInfo a party accepted."""
    cursor = await conn.execute("SELECT receiver, subject, last_updated FROM client_info_push")
    return {(r["receiver"], r["subject"], r["last_updated"]) for r in await cursor.fetchall()}


async def record_push(
    conn: psycopg.AsyncConnection[Row], receiver: str, info: ClientInfo, request_id: str
) -> None:
    await conn.execute(
        """INSERT INTO client_info_push (receiver, subject, status, last_updated, request_id)
           VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (receiver, info.partner, info.status.value, info.last_updated, request_id),
    )


async def last_reachable(
    conn: psycopg.AsyncConnection[Row], partners: Sequence[str]
) -> dict[str, bool]:
    """Each partner's reachability as the still-alive check last recorded it."""
    cursor = await conn.execute(
        """SELECT DISTINCT ON (partner) partner, reachable FROM partner_liveness
            WHERE partner = ANY(%s) ORDER BY partner, seq DESC""",
        (list(partners),),
    )
    return {row["partner"]: row["reachable"] for row in await cursor.fetchall()}


async def record_liveness(
    conn: psycopg.AsyncConnection[Row], partner: str, reachable: bool, url: str, error: str | None
) -> None:
    await conn.execute(
        "INSERT INTO partner_liveness (partner, reachable, url, error) VALUES (%s, %s, %s, %s)",
        (partner, reachable, url, error),
    )
