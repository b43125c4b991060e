"""The hub-initiated credentials handshake (`roamclear partners connect`): the hub in the
spec's "Sender" part, as Gireve onboards its partners.

The partner hands the operator its versions URL and a token A. Then:

1. the hub GETs the partner's versions and 2.2.1 details with token A and checks the
   endpoints it needs (3002 / 3003 before anything is sent: a Sender that cannot find what it
   needs "is expected NOT to send the POST");
2. the hub issues a token for the partner (kind C in ocpi_token: the spec's token B, which
   the partner will call the hub with), committed before the POST because the partner calls
   the hub's versions with it before it answers;
3. the hub POSTs its credentials (role HUB, that token, its versions URL) to the partner's
   credentials endpoint with token A;
4. the partner answers its own credentials: the token the hub calls it with from now on
   (its token C), stored sealed with the endpoints from step 1 (initiated_by HUB).

If anything after step 2 fails, the issued token is revoked, so a half-done handshake opens
nothing. The X-Request-ID of the POST and the X-Correlation-ID of the whole exchange are kept
with the connection row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from pipeline.ocpi.envelope import OcpiStatus
from pipeline.ocpi.partner_api import (
    Answer,
    HandshakeFailed,
    PartnerCall,
    PartnerVersion,
    discover,
    partner_client,
)
from pipeline.ocpi.registration import HubIdentity, check_endpoints, role_problems
from schemas.hub.party import PartnerRole, PartyRef
from schemas.ocpi.credentials import Credentials
from schemas.validation import SchemaInvalid, parse_model
from settlement.keys import HubKeyring
from settlement.partner_tokens import seal
from settlement.store import ocpi_connections, ocpi_tokens, reference_store
from settlement.store.db import connect
from settlement.store.ocpi_connections import (
    Connection,
    ConnectionEvent,
    ConnectionRefused,
    Initiator,
    Registration,
    RequestIds,
)
from settlement.store.ocpi_tokens import TokenKind

EXIT_USAGE: Final = 2  # the partner or the hub's state does not allow a connect
EXIT_HANDSHAKE: Final = 1  # the partner's API or its answer


class ConnectFailed(Exception):
    """`partners connect` could not connect the partner: `message` says why in one line,
    `status` is the OCPI status it amounts to (3001/3002/3003, or the partner's own), and
    `exit_code` what the command exits with."""

    def __init__(self, message: str, status: int | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Connect:
    """One hub-initiated handshake's inputs."""

    partner: PartyRef
    versions_url: str
    token_a: str  # the partner's registration token for the hub: used for steps 1 and 3
    unencoded: bool  # the partner reads tokens unencoded (OCPI 2.1.1 style)


def connect_partner(
    operator_url: str, keyring: HubKeyring, identity: HubIdentity, request: Connect
) -> Connection:
    """Run the handshake; the connection recorded, or ConnectFailed."""
    role = _partner_role(operator_url, request.partner)
    ids = RequestIds(request_id=str(uuid.uuid4()), correlation_id=str(uuid.uuid4()))
    with partner_client() as client:
        call = PartnerCall(client, request.token_a, request.unencoded, ids.correlation_id)
        try:
            found = discover(call, request.versions_url)
            check_endpoints(found.details, request.partner, role)
        except HandshakeFailed as failed:
            raise ConnectFailed(f"{failed.message} ({failed.status:d})", failed.status) from None
        with connect(operator_url) as conn:
            hub_token = ocpi_tokens.issue(
                conn, request.partner, TokenKind.C, request.unencoded, "partners connect"
            )
            conn.commit()
        try:
            credentials = _post(call, found, identity.credentials(hub_token), ids, request, role)
            return _store(operator_url, keyring, request, found, credentials, hub_token, ids)
        except BaseException:
            _revoke(operator_url, ocpi_tokens.token_hash(hub_token))
            raise


def _partner_role(operator_url: str, partner: PartyRef) -> PartnerRole:
    with connect(operator_url) as conn:
        role = reference_store.partner_role(conn, partner)
        if role is None:
            raise ConnectFailed(
                f"{partner} is not a registered partner (roamclear partners add)",
                exit_code=EXIT_USAGE,
            )
        before = ocpi_connections.current(conn, partner)
    if before is not None and before.registered:
        raise ConnectFailed(
            f"{partner} is connected already (since {before.created_at:%Y-%m-%d %H:%M} UTC, "
            f"{before.initiated_by.value.lower()}-initiated); the partner can update the "
            "connection with a credentials PUT or end it with DELETE",
            exit_code=EXIT_USAGE,
        )
    return role


def _post(
    call: PartnerCall,
    found: PartnerVersion,
    hub_credentials: dict[str, object],
    ids: RequestIds,
    request: Connect,
    role: PartnerRole,
) -> Credentials:
    """POST the hub's credentials; the partner's, checked, or ConnectFailed."""
    endpoint = next(e for e in found.details.endpoints if e.identifier == "credentials")
    try:
        answer = call.exchange("POST", endpoint.url, hub_credentials, request_id=ids.request_id)
    except HandshakeFailed as failed:
        raise ConnectFailed(f"{failed.message} ({failed.status:d})", failed.status) from None
    if answer.http_status == 405:
        raise ConnectFailed(
            f"the partner says the hub is registered with it already ({answer.summary()}): "
            "it must unregister the hub first, or the hub connects with a credentials PUT",
            answer.http_status,
        )
    if not answer.succeeded:
        status = _partner_status(answer)
        hint = ""
        if status == OcpiStatus.CLIENT_API_UNREACHABLE:
            hint = (
                f"; the partner calls the hub back at {hub_credentials['url']}: can it reach "
                "ROAMCLEAR_PUBLIC_URL, and is `roamclear api` up?"
            )
        raise ConnectFailed(
            f"the partner refused the hub's credentials at {endpoint.url}: "
            f"{answer.summary()}{hint}",
            status,
        )
    data = answer.envelope.get("data")
    try:
        credentials = parse_model(Credentials, data if isinstance(data, dict) else {})
    except SchemaInvalid as exc:
        problems = "; ".join(str(v) for v in exc.violations[:10])
        raise ConnectFailed(
            f"the partner answered credentials that are not OCPI 2.2.1: {problems}",
            OcpiStatus.CLIENT_API_UNREACHABLE,
        ) from None
    problems_found = role_problems(credentials, request.partner, role)
    if problems_found:
        undone = _unregister_at_partner(call, endpoint.url, credentials.token)
        raise ConnectFailed(
            f"the partner's credentials do not fit {request.partner}: "
            f"{'; '.join(problems_found)} ({undone})",
            OcpiStatus.INVALID_PARAMETERS,
        )
    return credentials


def _partner_status(answer: Answer) -> int | None:
    code = answer.status_code
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _unregister_at_partner(call: PartnerCall, url: str, token: str) -> str:
    """Best effort: end the registration the partner just made, with its new token."""
    with_new_token = PartnerCall(call.client, token, call.unencoded, call.correlation_id)
    try:
        answer = with_new_token.exchange("DELETE", url)
    except HandshakeFailed as failed:
        return f"the hub could not unregister at the partner again: {failed.message}"
    if answer.succeeded:
        return "the hub unregistered at the partner again"
    return f"the hub could not unregister at the partner again: {answer.summary()}"


def _store(
    operator_url: str,
    keyring: HubKeyring,
    request: Connect,
    found: PartnerVersion,
    credentials: Credentials,
    hub_token: str,
    ids: RequestIds,
) -> Connection:
    registration = Registration(
        version=found.details.version,
        versions_url=found.versions_url,
        version_url=found.version_url,
        endpoints=found.details.endpoints,
        roles=credentials.roles,
        partner_token=seal(keyring, str(request.partner), credentials.token),
        token_unencoded=request.unencoded,
        hub_token_hash=ocpi_tokens.token_hash(hub_token),
    )
    with connect(operator_url) as conn:
        try:
            connection = ocpi_connections.record(
                conn, request.partner, ConnectionEvent.REGISTERED, Initiator.HUB, ids, registration
            )
        except ConnectionRefused as exc:
            raise ConnectFailed(
                f"{exc} (the partner registered itself meanwhile)", exit_code=EXIT_USAGE
            ) from None
        conn.commit()
    return connection


def _revoke(operator_url: str, hashed: str) -> None:
    with connect(operator_url) as conn:
        ocpi_tokens.revoke(conn, hashed, "partners connect failed")
        conn.commit()
