"""The OCPI 2.2.1 CDRs module, receiver interface: partners POST their CDRs to the hub.

    POST /ocpi/2.2.1/cdrs            one CDR -> cdr.submitted (broker-acked before the answer)
      201, 1000, Location: <public url>/ocpi/2.2.1/cdrs/CDR-1     accepted, on the topic
      200, 1000, the same Location                               the same CDR again
      200, 2001, "charging_periods[0]...: must be >= 0; ..."     refused, kept (stage ingest)
      400, 2001 not JSON; 413, 2001 body over BODY_BYTES_MAX; 401 token; 429 Retry-After;
      503, 3000 (Retry-After) the broker or PostgreSQL failed: nothing was accepted
    GET  /ocpi/2.2.1/cdrs/{id}       the caller's own CDR, exactly as it was received; 404

What the door decides is settlement.clearing.door; the batching, the claim of a CDR key and
the publication are pipeline.ocpi.cdr_ingest. Every authenticated body is kept
(ocpi_cdr_receipt) with the request's X-Request-ID and X-Correlation-ID. A CDR is the
caller's when its country_code/party_id are the token's partner's; the Location names the
CDR by its id alone (upper case, as CiStrings compare), since the token says whose it is.
docs/ocpi.md, "CDRs", says what the spec left open and what the hub chose.
"""

from __future__ import annotations

import uuid
from typing import Final
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline.api.db import Conn
from pipeline.config import Settings
from pipeline.hubkeys import hub_signer
from pipeline.observe.metrics import INGEST_REJECTIONS
from pipeline.ocpi.auth import Caller, OcpiCaller, cached_ocpi_caller
from pipeline.ocpi.cdr_ingest import Answer, CdrIngest, IngestUnavailable
from pipeline.ocpi.envelope import OcpiError, OcpiStatus, ocpi_body, ocpi_response
from pipeline.ocpi.limits import RateLimiter, retry_after
from pipeline.topics import Topic, topic_name
from schemas.hub.party import SEPARATOR as KEY_SEPARATOR
from schemas.ocpi.cdr import Cdr
from settlement.clearing.door import Admitted, Refused, admit
from settlement.clearing.outcome import ClaimedCdrKey
from settlement.clearing.reasons import Reason
from settlement.store import ocpi_cdrs
from settlement.store.ocpi_cdrs import Outcome, Receipt, Refusal

PATH: Final = "cdrs"
# pipeline.ocpi.modules imports this module for MODULES (and checks this path against its
# VERSION_PATH), so it is spelled out here rather than imported from there
CDRS_PATH: Final = "/ocpi/2.2.1/cdrs"
# A CDR body: kept whole in PostgreSQL and sent whole as one record (envelope included,
# below Apache Kafka's default 1 MiB); a CDR of CHARGING_PERIODS_MAX periods is about 135 kB.
BODY_BYTES_MAX: Final = 512 * 1024
UNAVAILABLE_RETRY_S: Final = 2

router = APIRouter(tags=["ocpi"])


def new_ingest(settings: Settings) -> CdrIngest | None:
    """The receiver's engine for the app (None without a broker: POST answers 503)."""
    if settings.kafka_bootstrap_servers is None or settings.database_url is None:
        return None
    from pipeline.dbroles import DbRole, role_url

    return CdrIngest(
        role_url(settings, DbRole.API),
        settings.kafka_bootstrap_servers,
        topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED),
        hub_signer(settings),
    )


def location(request: Request, cdr_key: str) -> str:
    """The CDR's URL: its canonical key's id (`NL*TNM*CDR-1` -> `…/cdrs/CDR-1`)."""
    public: str = request.app.state.public_url
    cdr_id = cdr_key.split(KEY_SEPARATOR, 2)[2]  # the id may itself hold the separator
    return f"{public.rstrip('/')}{CDRS_PATH}/{quote(cdr_id, safe='')}"


async def _body(request: Request) -> tuple[bytes | None, int]:
    """The body, or None and its size when it is over BODY_BYTES_MAX (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BODY_BYTES_MAX:
        return None, int(declared)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > BODY_BYTES_MAX:
            return None, size
        chunks.append(chunk)
    return b"".join(chunks), size


def _receipt(
    request: Request, caller: Caller, body: bytes | None, size: int
) -> tuple[Receipt, Cdr | None]:
    """The receipt of one body, with the door's decision (a body over the limit is refused
    unread), and the admitted CDR."""
    decided = (
        admit(body, caller.partner)
        if body is not None
        else Refused(
            Reason.BODY_TOO_LARGE,
            f"the body is {size} bytes; a CDR body may have at most {BODY_BYTES_MAX}",
        )
    )
    refusal = (
        None
        if isinstance(decided, Admitted)
        else Refusal(decided.reason, decided.message, decided.violations)
    )
    receipt = Receipt(
        receipt_id=uuid.uuid4(),
        partner=caller.partner,
        token_hash=caller.token_hash,
        cdr_key=ClaimedCdrKey(str(decided.key)) if isinstance(decided, Admitted) else decided.key,
        body=body or b"",
        body_bytes=size,
        request_id=request.state.request_id,
        correlation_id=request.state.correlation_id,
        outcome=Outcome.REJECTED if refusal else Outcome.ACCEPTED,
        refusal=refusal,
    )
    return receipt, decided.cdr if isinstance(decided, Admitted) else None


def _answer(request: Request, answer: Answer) -> Response:
    receipt = answer.receipt
    if receipt.refusal is not None:
        INGEST_REJECTIONS.labels(str(receipt.refusal.reason)).inc()
        http_status = {Reason.MALFORMED_JSON: 400, Reason.BODY_TOO_LARGE: 413}.get(
            receipt.refusal.reason, 200
        )
        # for schema_invalid the message is every violation with its path
        message = f"{receipt.refusal.reason}: {receipt.refusal.message}"
        return ocpi_response(None, OcpiStatus.INVALID_PARAMETERS, message, http_status)
    assert receipt.cdr_key is not None
    created = answer.published_now
    return ocpi_response(
        None,
        OcpiStatus.SUCCESS,
        "Success" if created else "Success: this CDR was received before",
        201 if created else 200,
        {"Location": location(request, receipt.cdr_key)},
    )


def rate_limited(request: Request, caller: Caller) -> Response | None:
    """429 with Retry-After when the caller's bucket is empty, else None (a token taken)."""
    limiter: RateLimiter = request.app.state.ocpi_rate
    partner = str(caller.partner)
    wait_s = limiter.wait_s(partner)
    if not wait_s:
        return None
    rate = limiter.rate(partner)
    return ocpi_response(
        None,
        OcpiStatus.CLIENT_ERROR,
        f"too many requests: {partner} may send {rate.per_s:g} per second "
        f"(bursts of {rate.burst:g}); retry after the Retry-After seconds",
        429,
        {"Retry-After": retry_after(wait_s)},
    )


@router.post(
    CDRS_PATH,
    summary="OCPI 2.2.1 CDRs receiver: one CDR, on the topic before the answer",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "description": "one OCPI 2.2.1 CDR"}
                }
            },
        }
    },
)
async def post_cdr(request: Request) -> Response:
    # the raw body, not a pydantic parameter: invalid JSON must be 400, a schema violation
    # 200 with 2001 and every path, and the body kept either way
    caller = await cached_ocpi_caller(request)
    limited = rate_limited(request, caller)
    if limited is not None:
        return limited
    ingest: CdrIngest | None = request.app.state.cdr_ingest
    if ingest is None:
        raise OcpiError(503, OcpiStatus.SERVER_ERROR, "this hub has no broker to take CDRs")
    body, size = await _body(request)
    receipt, cdr = _receipt(request, caller, body, size)
    try:
        answer = await ingest.submit(receipt, cdr)
    except IngestUnavailable:
        return ocpi_response(
            None,
            OcpiStatus.SERVER_ERROR,
            "the hub could not take the CDR now (its broker or database failed); nothing was "
            "accepted: send it again",
            503,
            {"Retry-After": str(UNAVAILABLE_RETRY_S)},
        )
    return _answer(request, answer)


@router.get(f"{CDRS_PATH}/{{cdr_id:path}}", summary="A CDR the caller posted, as received")
def get_cdr(cdr_id: str, request: Request, caller: OcpiCaller, conn: Conn) -> Response:
    limited = rate_limited(request, caller)
    if limited is not None:
        return limited
    key = f"{caller.partner}*{cdr_id.upper()}"
    # no CDR id holds a NUL (the door refuses one), nor can PostgreSQL's text be asked for it
    body = ocpi_cdrs.accepted_body(conn, key) if cdr_id and "\x00" not in cdr_id else None
    if body is None:
        raise OcpiError(
            404, OcpiStatus.CLIENT_ERROR, f"no CDR {cdr_id!r} received from {caller.partner}"
        )
    return Response(_with_data(body), media_type="application/json")


def _with_data(body: bytes) -> bytes:
    """The success envelope around the CDR's own bytes: numbers, order and unknown fields
    exactly as the partner sent them."""
    rest = orjson.dumps(ocpi_body(None, OcpiStatus.SUCCESS, "Success"))
    return b'{"data":' + body.removeprefix(b"\xef\xbb\xbf") + b"," + rest[1:]
