"""The connection history's lifecycle, held by PostgreSQL whoever writes: REGISTERED only when
not registered, UPDATED and UNREGISTERED only when registered, a connection's token its own
partner's."""

from __future__ import annotations

import psycopg
import pytest

from schemas.hub.party import PartyRef
from settlement.keys import HubKey, HubKeyring
from settlement.partner_tokens import seal
from settlement.store import ocpi_connections, ocpi_tokens, reference_store
from settlement.store.db import connect
from settlement.store.ocpi_connections import (
    ConnectionEvent,
    ConnectionRefused,
    Initiator,
    Registration,
    RequestIds,
)

pytestmark = pytest.mark.integration
TNM, OTH = PartyRef.parse("NL*TNM"), PartyRef.parse("DE*OTH")
IDS = RequestIds("req", "corr")
RING = HubKeyring(HubKey.from_secret(b"s" * 32))


def _registration(conn: psycopg.Connection[dict[str, object]], party: PartyRef) -> Registration:
    token = ocpi_tokens.issue(conn, party, ocpi_tokens.TokenKind.C)
    return Registration(
        version="2.2.1",
        versions_url="https://p.example/versions",
        version_url="https://p.example/2.2.1",
        endpoints=(),
        roles=(),
        partner_token=seal(RING, str(party), "b"),
        token_unencoded=False,
        hub_token_hash=ocpi_tokens.token_hash(token),
    )


def test_the_lifecycle_is_the_database_s(fresh_database_url: str) -> None:
    with connect(fresh_database_url) as conn:
        reference_store.add_partner(conn, TNM, "CPO", "TNM")
        reference_store.add_partner(conn, OTH, "CPO", "OTH")
        with pytest.raises(ConnectionRefused, match="NL\\*TNM is not registered"):
            ocpi_connections.record(
                conn, TNM, ConnectionEvent.UPDATED, Initiator.PARTNER, IDS, _registration(conn, TNM)
            )
        with pytest.raises(ConnectionRefused, match="not registered"):
            ocpi_connections.record(conn, TNM, ConnectionEvent.UNREGISTERED, Initiator.HUB, IDS)
        first = ocpi_connections.record(
            conn, TNM, ConnectionEvent.REGISTERED, Initiator.HUB, IDS, _registration(conn, TNM)
        )
        with pytest.raises(ConnectionRefused, match="registered already"):
            ocpi_connections.record(
                conn, TNM, ConnectionEvent.REGISTERED, Initiator.PARTNER, IDS,
                _registration(conn, TNM),
            )  # fmt: skip
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="belongs to DE\\*OTH"):
            ocpi_connections.record(
                conn, TNM, ConnectionEvent.UPDATED, Initiator.PARTNER, IDS, _registration(conn, OTH)
            )
        ocpi_connections.record(conn, TNM, ConnectionEvent.UNREGISTERED, Initiator.PARTNER, IDS)
        last = ocpi_connections.current(conn, TNM)
        assert first.seq == 1 and last is not None and (last.seq, last.registered) == (2, False)
        # only what a registration needs goes with it, nothing with an unregistration
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute(
                "INSERT INTO ocpi_connection (partner, event, initiated_by, request_id, "
                "correlation_id) VALUES ('NL*TNM', 'REGISTERED', 'HUB', 'r', 'c')"
            )
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="not registered"):
            ocpi_connections.record(
                conn, PartyRef.parse("FR*NOP"), ConnectionEvent.UNREGISTERED, Initiator.HUB, IDS
            )


def test_the_operator_disconnects_a_partner_whose_token_then_dies(fresh_database_url: str) -> None:
    with connect(fresh_database_url) as conn:
        reference_store.add_partner(conn, TNM, "CPO", "TNM")
        with pytest.raises(ConnectionRefused, match="NL\\*TNM is not registered"):
            ocpi_connections.disconnect(conn, TNM, IDS, "never connected")
        registration = _registration(conn, TNM)
        ocpi_connections.record(
            conn, TNM, ConnectionEvent.REGISTERED, Initiator.PARTNER, IDS, registration
        )
        ended = ocpi_connections.disconnect(conn, TNM, IDS, "lost its token")
        assert ended.event is ConnectionEvent.UNREGISTERED and ended.initiated_by is Initiator.HUB
        current = ocpi_connections.current(conn, TNM)
        assert current is not None and not current.registered
        token = ocpi_tokens.lookup(conn, registration.hub_token_hash)
        assert token is not None and token.revoked_at is not None
        with pytest.raises(ConnectionRefused, match="not registered"):
            ocpi_connections.disconnect(conn, TNM, IDS, "twice")
        again = ocpi_connections.record(
            conn, TNM, ConnectionEvent.REGISTERED, Initiator.PARTNER, IDS, _registration(conn, TNM)
        )
        assert again.registered  # a new invitation connects it again
