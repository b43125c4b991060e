"""Property-based fuzzing of every OCPI endpoint of the hub, against one real uvicorn, the
broker and PostgreSQL for the whole module (strategies in tests/integration/ocpi/fuzz.py).

For any request (valid objects mutated, other JSON, JSON some parsers refuse, junk bytes,
odd path segments, bad Authorization headers, odd request ids):

1. the answer is never HTTP 5xx, always the OCPI envelope; no usable token is 401; a body
   that is not JSON is 400; anything else authenticated is 200/201 (a business problem:
   2xxx with a status_message), or 404 for what the caller may not see or does not exist;
2. no body is lost: every authenticated push to a receiver is exactly one receipt row,
   under the request id the hub echoed, with the body as sent and the answer as given;
   for CDRs `roamclear counts`' received_http = accepted_http + duplicates_http +
   rejected_at_ingest, and every accepted CDR is on the topic;
3. a partner never reads or writes another partner's objects: NL*TNM's token on NL*ABC's
   URLs is 404, a CDR naming NL*ABC is refused, and nothing of NL*ABC's changes.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Final

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import Settings
from pipeline.kafka.admin import create_topics
from pipeline.kafka.client import records_in_topic
from pipeline.ocpi.credentials import CREDENTIALS_BODY_BYTES_MAX
from pipeline.topics import Topic, topic_name, topic_specs
from schemas.base import loads_exact
from schemas.wire import encode_json_bytes
from settlement.store import books
from settlement.store.db import Row, connect
from tests.conftest import scratch_database
from tests.integration.clearing.helpers import cdr_dict, sample
from tests.integration.ocpi import fuzz
from tests.integration.ocpi.sessions import register_partners, session_doc
from tests.integration.settlement.http import free_port, serve

pytestmark = pytest.mark.integration

PUBLIC: Final = "https://hub.example.test/roam"
BASE: Final = "/ocpi/2.2.1"
OWN_PARTIES: Final = (("NL", "TNM"), ("nl", "tnm"), ("Nl", "tNm"))
OTHER_PARTIES: Final = (("NL", "ABC"), ("nl", "abc"))
# CI runs the same examples every time (a red build is a bug, never bad luck); set
# ROAMCLEAR_FUZZ_EXPLORE=N to run N times as many fresh ones, as a fuzzing session does.
EXPLORE: Final = int(os.environ.get("ROAMCLEAR_FUZZ_EXPLORE", "0"))
FUZZ: Final = settings(
    max_examples=60 * max(EXPLORE, 1), deadline=None, database=None, derandomize=not EXPLORE
)

TARIFF: Final = sample("tariff_nl_tnm_ac.json")
LOCATION: Final = sample("location_nl_tnm_ams.json")
EVSE: Final = LOCATION["evses"][0]
CONNECTOR: Final = EVSE["connectors"][0]
TARIFF_IDS: Final = ("AC-STANDARD", "FZ-T-1")
LOCATION_IDS: Final = ("LOC-AMS-0001", "FZ-LOC-1")
SESSION_IDS: Final = ("FZ-SES-1", "FZ-SES-2")
CDR_IDS: Final = ("FZ-CDR-1", "FZ-CDR-2", "FZ-CDR-3")


def _as_abc(document: dict[str, Any], object_id: str) -> dict[str, Any]:
    return {**copy.deepcopy(document), "party_id": "ABC", "id": object_id}


# NL*ABC's objects, pushed by NL*ABC; NL*TNM's token must never reach them
ABC_TARIFF: Final = _as_abc(TARIFF, "ABC-T-1")
ABC_LOCATION: Final = _as_abc(LOCATION, "ABC-LOC-1")
ABC_SESSION: Final = _as_abc(session_doc("ABC-SES-1"), "ABC-SES-1")
ABC_CDR: Final = _as_abc(cdr_dict(0), "ABC-CDR-1")
ABC_URLS: Final = (
    f"{BASE}/tariffs/NL/ABC/ABC-T-1",
    f"{BASE}/locations/NL/ABC/ABC-LOC-1",
    f"{BASE}/locations/NL/ABC/ABC-LOC-1/{EVSE['uid']}",
    f"{BASE}/locations/NL/ABC/ABC-LOC-1/{EVSE['uid']}/{CONNECTOR['id']}",
    f"{BASE}/sessions/NL/ABC/ABC-SES-1",
    f"{BASE}/cdrs/ABC-CDR-1",
)


@dataclass(frozen=True, slots=True)
class FuzzHub:
    settings: Settings
    client: httpx.Client
    tokens: dict[str, str]  # TNM, ABC: token C; A: NL*TNM's registration token

    def authorization(self, who: str = "TNM") -> bytes:
        return b"Token " + base64.b64encode(self.tokens[who].encode())

    def send(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        authorization: bytes | None = None,
        request_id: bytes | None = None,
    ) -> httpx.Response:
        headers: dict[str, bytes] = {"Content-Type": b"application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        headers["X-Request-ID"] = request_id or str(uuid.uuid4()).encode()
        return self.client.request(method, url, content=body, headers=headers)

    def db(self) -> Any:
        assert self.settings.database_url
        return connect(self.settings.database_url)


@pytest.fixture(scope="module")
def hub(
    settings: Settings, postgres_server_url: str, template_database: str, kafka_bootstrap: str
) -> Iterator[FuzzHub]:
    """One API for the module, with a database and topics of its own (the examples of one
    test share them, so the checks compare before and after each request)."""
    prefix = f"rcfz{uuid.uuid4().hex[:10]}"
    create_topics(kafka_bootstrap, topic_specs(prefix))
    with scratch_database(postgres_server_url, "roamclear_fz", template_database) as url:
        hub_settings = replace(
            settings,
            database_url=url,
            topic_prefix=prefix,
            public_url=PUBLIC,
            ocpi_requests_per_s=100_000.0,  # the fuzzer is no flood to throttle
            ocpi_burst=100_000.0,
        )
        tokens = register_partners(hub_settings)  # NL*TNM, NL*ABC and an eMSP
        with serve(hub_settings) as base, httpx.Client(base_url=base, timeout=30) as client:
            fuzz_hub = FuzzHub(hub_settings, client, tokens)
            _seed_abc(fuzz_hub)
            yield fuzz_hub


def _seed_abc(hub: FuzzHub) -> None:
    abc = hub.authorization("ABC")
    pushes = [
        ("PUT", ABC_URLS[0], ABC_TARIFF),
        ("PUT", ABC_URLS[1], ABC_LOCATION),
        ("PUT", ABC_URLS[4], ABC_SESSION),
        ("POST", f"{BASE}/cdrs", ABC_CDR),
    ]
    for method, url, document in pushes:
        answer = hub.send(method, url, encode_json_bytes(document), abc)
        assert answer.status_code == 201 and answer.json()["status_code"] == 1000, answer.text


def _abc_state(hub: FuzzHub) -> list[Any]:
    """Everything of NL*ABC's a request of another partner could change: its objects as its
    own token reads them, and the versions and receipts the hub stored for them."""
    read = [hub.send("GET", url, authorization=hub.authorization("ABC")) for url in ABC_URLS]
    with hub.db() as conn:
        stored = conn.execute(
            "SELECT (SELECT count(*) FROM tariff_version WHERE cpo = 'NL*ABC') AS tariffs,"
            " (SELECT count(*) FROM tariff_lifecycle WHERE cpo = 'NL*ABC') AS lifecycle,"
            " (SELECT count(*) FROM location_version WHERE cpo = 'NL*ABC') AS locations,"
            " (SELECT count(*) FROM session_push WHERE outcome = 'ACCEPTED'"
            "   AND session_key LIKE 'NL*ABC*%') AS sessions,"
            " (SELECT count(*) FROM ocpi_cdr_receipt WHERE outcome <> 'REJECTED'"
            "   AND cdr_key LIKE 'NL*ABC*%') AS cdrs"
        ).fetchone()
    return [*((a.status_code, loads_exact(a.content).get("data")) for a in read), stored]


@dataclass(frozen=True, slots=True)
class Sent:
    """One request, its answer, and what the hub kept of it."""

    body: bytes | None
    answer: httpx.Response
    envelope: dict[str, Any]
    kept: fuzz.Kept
    added: dict[str, int]  # rows each receipt table gained


def _send(hub: FuzzHub, data: st.DataObject, method: str, url: str, body: bytes | None) -> Sent:
    """Send as NL*TNM, with a drawn request id; check what holds for every answer (no 5xx,
    the envelope, the request ids echoed) and collect what the hub kept."""
    request_id = data.draw(fuzz.request_ids(), "X-Request-ID")
    with hub.db() as conn:
        before = fuzz.totals(conn)
    answer = hub.send(method, url, body, hub.authorization(), request_id)
    assert answer.status_code < 500, answer.text
    document = fuzz.envelope(answer)
    echoed = answer.headers["x-request-id"]
    if len(request_id) <= fuzz.ID_CHARS_MAX and request_id.isascii() and b"\t" not in request_id:
        assert echoed == request_id.decode()
    with hub.db() as conn:
        kept = fuzz.kept(conn, echoed)
        after = fuzz.totals(conn)
    added = {table: after[table] - before[table] for table in after}
    return Sent(body, answer, document, kept, added)


def _check_receipt(sent: Sent, receipt: Row) -> None:
    """A receipt holds the body as sent and the answer as given."""
    assert bytes(receipt["body"] or b"") == (sent.body or b"")
    assert receipt["http_status"] == sent.answer.status_code
    assert receipt["status_code"] == sent.envelope["status_code"]


def _kept_once(sent: Sent, table: str) -> Row | None:
    """A GET keeps nothing (None); any other request exactly one row in `table`, the body
    as sent and the answer as given (returned)."""
    if sent.answer.request.method == "GET":
        assert sent.answer.status_code in (200, 404)
        assert sent.added == {"cdrs": 0, "references": 0, "sessions": 0}
        return None
    assert sent.added == {name: int(name == table) for name in sent.added}
    (receipt,) = sent.kept.rows
    assert getattr(sent.kept, table) == [receipt]
    _check_receipt(sent, receipt)
    return receipt


def _check_readable(sent: Sent) -> None:
    """400 exactly for bodies that are not JSON (text only some parsers read: either way)."""
    readable = fuzz.hub_reads(sent.body or b"")
    if readable is True:
        assert sent.answer.status_code != 400, sent.answer.text
    elif readable is False:
        assert sent.answer.status_code == 400, sent.answer.text
        assert sent.envelope["status_code"] == 2001


def _check_answered(sent: Sent) -> None:
    """What a request that reached a receiver may be answered: 200/201 (1000 or a 2xxx
    business problem), 400 not JSON, 404 not there or not the caller's."""
    status, code = sent.answer.status_code, sent.envelope["status_code"]
    assert status in (200, 201, 400, 404), sent.answer.text
    assert (status == 201) <= (code == 1000)
    if status == 404:
        assert code == 2000
    assert code == 1000 or 2000 <= code < 3000, sent.answer.text


# ---------------------------------------------------------------------------------------
# 1. no usable token: 401, nothing kept


def _own_endpoints() -> list[tuple[str, str]]:
    tariff = f"{BASE}/tariffs/NL/TNM/FZ-T-1"
    location = f"{BASE}/locations/NL/TNM/FZ-LOC-1"
    session = f"{BASE}/sessions/NL/TNM/FZ-SES-1"
    return [
        ("GET", "/ocpi/versions"),
        ("GET", BASE),
        *((m, f"{BASE}/credentials") for m in ("GET", "POST", "PUT", "DELETE")),
        ("POST", f"{BASE}/cdrs"),
        ("GET", f"{BASE}/cdrs/FZ-CDR-1"),
        *((m, tariff) for m in ("GET", "PUT", "DELETE")),
        *((m, url) for m in ("GET", "PUT", "PATCH") for url in (location, f"{location}/E/1")),
        *((m, session) for m in ("GET", "PUT", "PATCH")),
    ]


@FUZZ
@given(data=st.data())
def test_no_usable_token_is_401_and_nothing_is_kept(hub: FuzzHub, data: st.DataObject) -> None:
    method, url = data.draw(st.sampled_from(_own_endpoints()), "endpoint")
    modules_only = url.startswith(f"{BASE}/") and not url.endswith("/credentials")
    tokens = [hub.tokens["TNM"], hub.tokens["A"]]
    bad = fuzz.bad_authorizations(tokens)
    if modules_only:  # the registration token opens versions and credentials only
        bad = st.one_of(bad, st.just(hub.authorization("A")))
    authorization = data.draw(bad, "Authorization")
    body = data.draw(fuzz.bodies(TARIFF), "body") if method in ("POST", "PUT", "PATCH") else None
    with hub.db() as conn:
        before = fuzz.totals(conn)
    answer = hub.send(method, url, body, authorization)
    assert answer.status_code == 401, answer.text
    assert fuzz.envelope(answer)["status_code"] == 2000
    with hub.db() as conn:
        assert fuzz.totals(conn) == before


# ---------------------------------------------------------------------------------------
# 2. pushes of one's own objects: answered as OCPI says, and every body kept once


def _parties() -> st.SearchStrategy[tuple[str, str]]:
    """NL*TNM's own party as URLs may spell it, now and then another (odd) one."""
    odd = st.tuples(fuzz.segments(["NL"]), fuzz.segments(["TNM"]))
    return st.one_of(st.sampled_from(OWN_PARTIES), st.sampled_from(OWN_PARTIES), odd)


def _own(country: str, party: str) -> bool:
    return (country.upper(), party.upper()) == ("NL", "TNM")


@st.composite
def _reference_request(draw: st.DrawFn) -> tuple[str, str, tuple[str, ...], dict[str, Any]]:
    """(module, method, path after the module, the valid object the body is made from)."""
    country, party = draw(_parties())
    if draw(st.booleans()):
        method = draw(st.sampled_from(["PUT", "PUT", "DELETE", "GET"]))
        ids = (draw(fuzz.segments(TARIFF_IDS)),)
        return "tariffs", method, (country, party, *ids), {**TARIFF, "id": ids[0]}
    method = draw(st.sampled_from(["PUT", "PATCH", "PATCH", "GET"]))
    depth = draw(st.integers(min_value=1, max_value=3))
    known = [LOCATION_IDS, (EVSE["uid"], "FZ-EVSE-1"), (CONNECTOR["id"], "2")][:depth]
    ids = tuple(draw(fuzz.segments(k)) for k in known)
    document = [LOCATION, EVSE, CONNECTOR][depth - 1]
    id_field = ["id", "uid", "id"][depth - 1]
    if method == "PATCH":
        document = {"status": "AVAILABLE", "last_updated": "2026-03-01T00:00:00Z"}
        if depth == 1:
            document = {"name": "renamed", "last_updated": "2026-03-01T00:00:00Z"}
    else:
        document = {**document, id_field: ids[-1]}
    return "locations", method, (country, party, *ids), document


@FUZZ
@given(data=st.data())
def test_tariff_and_location_pushes_are_answered_and_kept(
    hub: FuzzHub, data: st.DataObject
) -> None:
    module, method, parts, document = data.draw(_reference_request(), "request")
    body = data.draw(fuzz.bodies(document), "body") if method in ("PUT", "PATCH") else None
    sent = _send(hub, data, method, f"{BASE}/{module}/{fuzz.path(*parts)}", body)
    receipt = _kept_once(sent, "references")
    if receipt is None:
        return
    assert (receipt["object_key"] is not None) == (sent.envelope["status_code"] == 1000)
    _check_answered(sent)
    if not _own(*parts[:2]):
        assert sent.answer.status_code == 404 and sent.envelope["status_code"] == 2000
        return
    if method != "DELETE":
        _check_readable(sent)
    if method == "PUT" and sent.envelope["status_code"] == 1000:
        read = hub.send("GET", str(sent.answer.request.url.raw_path, "ascii"), None,
                        hub.authorization())  # fmt: skip
        assert read.status_code == 200, read.text


# ---------------------------------------------------------------------------------------
# sessions


@FUZZ
@given(data=st.data())
def test_session_pushes_are_answered_and_kept(hub: FuzzHub, data: st.DataObject) -> None:
    country, party = data.draw(_parties(), "party")
    session_id = data.draw(fuzz.segments(SESSION_IDS), "session_id")
    method = data.draw(st.sampled_from(["PUT", "PUT", "PATCH", "GET"]), "method")
    document = session_doc(session_id)
    if method == "PATCH":
        document = {"kwh": "5.5", "status": "ACTIVE", "last_updated": "2026-03-04T10:15:00Z"}
        document["kwh"] = loads_exact(b"5.5")
    body = None if method == "GET" else data.draw(fuzz.bodies(document), "body")
    url = f"{BASE}/sessions/{fuzz.path(country, party, session_id)}"
    sent = _send(hub, data, method, url, body)
    receipt = _kept_once(sent, "sessions")
    if receipt is None:
        return
    accepted = sent.envelope["status_code"] == 1000
    assert (receipt["outcome"] == "ACCEPTED") == accepted
    assert (receipt["event_id"] is not None) == accepted
    _check_answered(sent)
    if not _own(country, party):
        assert sent.answer.status_code == 404 and sent.envelope["status_code"] == 2000
        return
    _check_readable(sent)
    if accepted:
        read = hub.send("GET", url, None, hub.authorization())
        assert read.status_code == 200
        held = loads_exact(read.content)["data"]
        assert held == receipt["session"]
        if method == "PUT":
            assert held == loads_exact(body or b"")


# ---------------------------------------------------------------------------------------
# CDRs


@FUZZ
@given(data=st.data())
def test_cdr_posts_are_answered_and_counted(hub: FuzzHub, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=2), "sample")
    cdr_id = data.draw(fuzz.segments(CDR_IDS), "id")
    body = data.draw(fuzz.bodies(cdr_dict(index, id=cdr_id)), "body")
    sent = _send(hub, data, "POST", f"{BASE}/cdrs", body)
    assert sent.added == {"cdrs": 1, "references": 0, "sessions": 0}
    (receipt,) = sent.kept.rows
    assert bytes(receipt["body"]) == body and receipt["body_bytes"] == len(body)
    _check_answered(sent)
    # the CDR receiver reads only UTF-8 JSON (RFC 8259): lenient-only text is 400 there
    assert (sent.answer.status_code == 400) == (fuzz.hub_reads(body) is not True)
    with hub.db() as conn:
        counts = books.ingest_counts(conn)
        published = conn.execute(
            "SELECT count(*) AS n FROM ocpi_cdr_published WHERE receipt_id = %s",
            (receipt["receipt_id"],),
        ).fetchone()
    assert counts["received_http"] == (
        counts["accepted_http"] + counts["duplicates_http"] + counts["rejected_at_ingest"]
    )
    assert counts["unpublished_http"] == 0  # the broker is up: every accepted CDR is on it
    outcome = {201: "ACCEPTED", 400: "REJECTED"}.get(sent.answer.status_code)
    if sent.answer.status_code == 200:
        outcome = "DUPLICATE" if sent.envelope["status_code"] == 1000 else "REJECTED"
    assert receipt["outcome"] == outcome
    assert published is not None and published["n"] == (outcome == "ACCEPTED")
    if outcome != "REJECTED":
        location = sent.answer.headers["location"].removeprefix(PUBLIC)
        read = hub.send("GET", location, None, hub.authorization())
        assert read.status_code == 200, read.text
        if outcome == "ACCEPTED":  # a duplicate reads the CDR as first accepted
            assert loads_exact(read.content)["data"] == loads_exact(body)


# ---------------------------------------------------------------------------------------
# 3. isolation


@st.composite
def _foreign_request(draw: st.DrawFn) -> tuple[str, str, bytes | None]:
    """A request of NL*TNM's token at NL*ABC's objects: (method, url, body)."""
    country, party = draw(st.sampled_from(OTHER_PARTIES))
    target = draw(st.integers(min_value=0, max_value=len(ABC_URLS)))
    if target == len(ABC_URLS):  # a CDR naming NL*ABC, posted by NL*TNM
        return "POST", f"{BASE}/cdrs", draw(fuzz.bodies(ABC_CDR))
    url = ABC_URLS[target].replace("/NL/ABC/", f"/{country}/{party}/")
    module = url.split("/")[3]
    methods = {
        "tariffs": ["GET", "PUT", "DELETE"],
        "locations": ["GET", "PUT", "PATCH"],
        "sessions": ["GET", "PUT", "PATCH"],
        "cdrs": ["GET"],
    }[module]
    method = draw(st.sampled_from(methods))
    document = [ABC_TARIFF, ABC_LOCATION, EVSE, CONNECTOR, ABC_SESSION, ABC_CDR][target]
    body = None if method in ("GET", "DELETE") else draw(fuzz.bodies(document))
    return method, url, body


@settings(FUZZ, max_examples=40 * max(EXPLORE, 1))
@given(data=st.data())
def test_a_partner_never_reads_or_writes_another_partners_objects(
    hub: FuzzHub, data: st.DataObject
) -> None:
    before = _abc_state(hub)
    method, url, body = data.draw(_foreign_request(), "request")
    sent = _send(hub, data, method, url, body)
    if url == f"{BASE}/cdrs":
        assert sent.answer.status_code in (200, 400), sent.answer.text
        assert sent.envelope["status_code"] == 2001
        (receipt,) = sent.kept.rows
        assert receipt["outcome"] == "REJECTED" and receipt["partner"] == "NL*TNM"
    else:
        assert sent.answer.status_code == 404, sent.answer.text
        assert sent.envelope["status_code"] == 2000 and "data" not in sent.envelope
    assert _abc_state(hub) == before


# ---------------------------------------------------------------------------------------
# versions and credentials


@FUZZ
@given(data=st.data())
def test_versions_and_credentials_never_fail_and_change_nothing_on_refusal(
    hub: FuzzHub, data: st.DataObject
) -> None:
    who = data.draw(st.sampled_from(["A", "TNM"]), "token")
    method, url = data.draw(
        st.sampled_from(
            [("GET", "/ocpi/versions"), ("GET", BASE)]
            + [(m, f"{BASE}/credentials") for m in ("GET", "POST", "PUT", "DELETE")]
        ),
        "endpoint",
    )
    # a partner whose versions URL refuses connections: the handshake fails at once (3001)
    nowhere = f"http://127.0.0.1:{free_port()}/ocpi/versions"
    credentials = {
        "token": "partner-token-b",
        "url": nowhere,
        "roles": [
            {
                "role": "CPO",
                "party_id": "TNM",
                "country_code": "NL",
                "business_details": {"name": "TNM Charging"},
            }
        ],
    }
    body = data.draw(fuzz.bodies(credentials, frozen=["url"]), "body")
    body = body if method in ("POST", "PUT") else None
    with hub.db() as conn:
        before = _tokens_and_connections(conn)
    answer = hub.send(method, url, body, hub.authorization(who))
    assert answer.status_code < 500, answer.text
    envelope = fuzz.envelope(answer)
    if method == "GET" and url != f"{BASE}/credentials":
        assert answer.status_code == 200 and envelope["status_code"] == 1000
    elif method != "POST":
        assert answer.status_code == 405  # NL*TNM is not registered
    elif len(body or b"") > CREDENTIALS_BODY_BYTES_MAX:
        assert answer.status_code == 413
    elif fuzz.hub_reads(body or b"") is False:
        assert answer.status_code == 400 and envelope["status_code"] == 2001
    else:
        assert answer.status_code == 200 and envelope["status_code"] in (2001, 3001)
    with hub.db() as conn:
        assert _tokens_and_connections(conn) == before


def _tokens_and_connections(conn: Any) -> Row | None:
    row: Row | None = conn.execute(
        "SELECT (SELECT count(*) FROM ocpi_token) AS tokens,"
        " (SELECT count(*) FROM ocpi_token_revocation) AS revoked,"
        " (SELECT count(*) FROM ocpi_connection) AS connections"
    ).fetchone()
    return row


# ---------------------------------------------------------------------------------------
# what the fuzzing found (each a 500 before its fix, its body not kept)


def _with(document: dict[str, Any], extra: bytes) -> bytes:
    """The document's JSON with `extra` spliced in as its last field(s)."""
    return encode_json_bytes(document)[:-1] + b"," + extra + b"}"


FOUND: Final = [
    # a NUL in a URL segment: PostgreSQL's text refused it in the receipt and in lookups
    ("PUT", "tariffs/NL/TNM/A%00B", encode_json_bytes({**TARIFF, "id": "A\u0000B"}), 200),
    ("DELETE", "tariffs/NL/TNM/A%00B", None, 404),
    ("GET", "tariffs/NL/TNM/A%00B", None, 404),
    ("PUT", "tariffs/N%00/TNM/AC-STANDARD", encode_json_bytes(TARIFF), 404),
    ("PATCH", "locations/NL/TNM/L%00/E/1", b'{"last_updated": "2026-03-01T00:00:00Z"}', 200),
    ("GET", "locations/NL/TNM/LOC-AMS-0001/E%00", None, 404),
    ("GET", "cdrs/C%00", None, 404),
    # text jsonb cannot hold, and NaN the lenient parser reads and the encoder writes as null
    ("PUT", "tariffs/NL/TNM/FZ-T-9", _with({**TARIFF, "id": "FZ-T-9"}, b'"x":"\\ud800"'), 200),
    ("PUT", "locations/NL/TNM/FZ-L-9", _with({**LOCATION, "id": "FZ-L-9"}, b'"x":NaN'), 200),
    ("PATCH", "locations/NL/TNM/LOC-AMS-0001",
     b'{"last_updated": "2026-03-01T00:00:00Z", "x": "\\ud800"}', 200),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "body", "status"), FOUND)
def test_what_the_fuzzing_found_is_answered_and_kept(
    hub: FuzzHub, method: str, url: str, body: bytes | None, status: int
) -> None:
    request_id = str(uuid.uuid4())
    answer = hub.send(method, f"{BASE}/{url}", body, hub.authorization(), request_id.encode())
    assert answer.status_code == status, answer.text
    assert fuzz.envelope(answer)["status_code"] == (2001 if status == 200 else 2000)
    with hub.db() as conn:
        kept = fuzz.kept(conn, request_id)
    if method != "GET":
        (receipt,) = kept.references
        assert bytes(receipt["body"] or b"") == (body or b"")
        assert receipt["status_code"] == fuzz.envelope(answer)["status_code"]


def test_a_cdr_sent_again_with_a_number_beyond_64_bits_is_a_conflict(hub: FuzzHub) -> None:
    """Comparing it with the accepted one failed its ingest batch: 503, nothing kept."""
    first = encode_json_bytes(cdr_dict(0, id="FZ-CDR-BIG"))
    again = first.replace(b'"step_size":1}', b'"step_size":1e99999}', 1)
    assert again != first
    assert hub.send("POST", f"{BASE}/cdrs", first, hub.authorization()).status_code == 201
    answer = hub.send("POST", f"{BASE}/cdrs", again, hub.authorization())
    assert answer.status_code == 200, answer.text
    assert "cdr_id_conflict" in fuzz.envelope(answer)["status_message"]
    with hub.db() as conn:
        (receipt,) = conn.execute(
            "SELECT outcome FROM ocpi_cdr_receipt WHERE body = %s", (again,)
        ).fetchall()
    assert receipt["outcome"] == "REJECTED"


# ---------------------------------------------------------------------------------------
# after the fuzzing: what was accepted is on the topics


def test_every_accepted_cdr_and_session_is_on_its_topic(hub: FuzzHub) -> None:
    with hub.db() as conn:
        counted = conn.execute(
            "SELECT (SELECT count(*) FROM ocpi_cdr_published) AS cdrs,"
            " (SELECT count(*) FROM ocpi_cdr_receipt WHERE outcome = 'ACCEPTED') AS accepted,"
            " (SELECT count(*) FROM session_push WHERE outcome = 'ACCEPTED') AS sessions"
        ).fetchone()
    assert counted is not None and counted["cdrs"] == counted["accepted"]
    servers = hub.settings.kafka_bootstrap_servers
    assert servers is not None

    def on_topic(topic: Topic) -> int:
        name = topic_name(hub.settings.topic_prefix, topic)
        return asyncio.run(records_in_topic(servers, name))

    assert on_topic(Topic.CDR_SUBMITTED) == counted["cdrs"]
    assert on_topic(Topic.SESSION_EVENTS) == counted["sessions"]
