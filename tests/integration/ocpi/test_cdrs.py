"""The OCPI CDRs receiver against a real uvicorn, the broker and PostgreSQL: a CDR is on the
topic (with the hub's proof, the token's partner as submitter) before its 201, the clearing
books it, and every body a partner sends is kept with what the hub answered."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline import retry as retries
from pipeline.cli.books import current_counts
from pipeline.config import Settings
from pipeline.embedded.postgres import start_postgres, stop_postgres
from pipeline.ocpi.auth import TOKEN_CACHE_S
from pipeline.ocpi.cdrs import BODY_BYTES_MAX
from schemas.base import loads_exact
from schemas.events import CdrSubmitted, parse_envelope
from schemas.hub.party import PartyRef
from schemas.wire import encode_json
from settlement.clearing.proof import KEY_HEADER
from settlement.store import books, ocpi_cdrs, ocpi_tokens
from settlement.store.db import Row, connect
from settlement.store.migrate import apply_migrations
from tests.integration.clearing.helpers import (
    cdr_dict,
    register_reference_data,
    submit,
    topic_records,
)
from tests.integration.clearing.test_batch import _clear
from tests.integration.settlement.http import serve
from tests.integration.settlement.test_finance_api_outage import _restart

pytestmark = pytest.mark.integration
PUBLIC = "https://hub.example.test/roam"
CDRS = "/ocpi/2.2.1/cdrs"


@dataclass(frozen=True, slots=True)
class Hub:
    client: httpx.Client
    settings: Settings
    tokens: dict[str, str]  # TNM: NL*TNM's token C, ABC: NL*ABC's, A: NL*TNM's token A

    def auth(self, name: str = "TNM", **headers: str) -> dict[str, str]:
        token = base64.b64encode(self.tokens[name].encode()).decode()
        return {"Authorization": f"Token {token}", **headers}

    def post(self, body: bytes | dict[str, Any], name: str = "TNM", **headers: str) -> Any:
        content = body if isinstance(body, bytes) else encode_json(body).encode()
        return self.client.post(CDRS, content=content, headers=self.auth(name, **headers))

    def db(self) -> Any:
        assert self.settings.database_url
        return connect(self.settings.database_url)


def _hub(settings: Settings, served: Settings | None = None) -> Iterator[Hub]:
    """Partners, reference data and tokens in `settings`' database; the app serves with
    `served` (default: the same settings)."""
    register_reference_data(settings)
    assert settings.database_url
    with connect(settings.database_url) as conn:
        tokens = {
            "TNM": ocpi_tokens.issue(conn, PartyRef.parse("NL*TNM"), ocpi_tokens.TokenKind.C),
            "ABC": ocpi_tokens.issue(conn, PartyRef.parse("NL*ABC"), ocpi_tokens.TokenKind.C),
            "A": ocpi_tokens.issue(conn, PartyRef.parse("NL*TNM"), ocpi_tokens.TokenKind.A),
        }
        conn.commit()
    with serve(served or settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield Hub(client, served or settings, tokens)


@pytest.fixture
def hub(fresh_settings: Settings) -> Iterator[Hub]:
    yield from _hub(replace(fresh_settings, public_url=PUBLIC))


def _receipts(hub: Hub) -> list[Row]:
    with hub.db() as conn:
        return conn.execute(
            "SELECT r.*, j.reason_code, j.stage, j.submitter, j.archive_id, j.payload,"
            ' p.partition, p."offset" FROM ocpi_cdr_receipt r'
            " LEFT JOIN rejection j USING (rejection_id)"
            " LEFT JOIN ocpi_cdr_published p ON p.receipt_id = r.receipt_id"
            " ORDER BY r.received_at"
        ).fetchall()


def _path(location: str) -> str:
    assert location.startswith(PUBLIC)
    return location.removeprefix(PUBLIC)


def test_a_cdr_is_on_the_topic_before_its_201_and_the_clearing_books_it(hub: Hub) -> None:
    cdr = cdr_dict(0)
    answer = hub.post(cdr)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status_code"] == 1000 and "data" not in answer.json()
    assert answer.headers["location"] == f"{PUBLIC}{CDRS}/{cdr['id'].upper()}"

    # on the topic already: the envelope the publish path builds, the token's partner as
    # submitter, the hub's proof, keyed by the canonical key
    (record,) = topic_records(hub.settings)
    envelope = parse_envelope(record.value or b"")
    assert isinstance(envelope, CdrSubmitted)
    assert str(envelope.submitter) == "NL*TNM" and envelope.cdr.id == cdr["id"]
    assert record.key == f"NL*TNM*{cdr['id']}".upper().encode()
    assert dict(record.headers)[KEY_HEADER].decode().startswith("hub-")
    (receipt,) = _receipts(hub)
    assert receipt["outcome"] == "ACCEPTED" and receipt["partner"] == "NL*TNM"
    assert (receipt["partition"], receipt["offset"]) == (record.partition, record.offset)

    # the Location returns the CDR exactly as it was sent
    again = hub.client.get(_path(answer.headers["location"]), headers=hub.auth())
    assert again.status_code == 200 and again.json()["status_code"] == 1000
    assert loads_exact(again.content)["data"] == cdr

    result = asyncio.run(_clear(hub.settings, [record]))
    assert result.outcomes == Counter({"booked": 1})
    with hub.db() as conn:
        (transaction,) = books.transactions_of_cdr(conn, f"NL*TNM*{cdr['id']}")
        assert transaction["kind"] == "CHARGE"


def test_a_duplicate_is_idempotent_and_other_content_is_2001_and_kept(hub: Hub) -> None:
    cdr = cdr_dict(1)
    first = hub.post(cdr)
    # the same CDR with its keys in another order and spaces: the same content
    reordered = json.dumps(json.loads(encode_json(cdr)), indent=1, sort_keys=True).encode()
    second = hub.post(reordered)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["status_code"] == 1000
    assert first.headers["location"] == second.headers["location"]

    changed = hub.post({**cdr, "remark": "re-sent with a correction"})
    assert changed.status_code == 200
    assert changed.json()["status_code"] == 2001
    assert "cdr_id_conflict" in changed.json()["status_message"]
    assert "credit CDR" in changed.json()["status_message"]

    assert len(topic_records(hub.settings)) == 1  # neither went to the topic
    receipts = _receipts(hub)
    assert [r["outcome"] for r in receipts] == ["ACCEPTED", "DUPLICATE", "REJECTED"]
    assert receipts[1]["duplicate_of"] == receipts[0]["receipt_id"]
    assert receipts[2]["reason_code"] == "cdr_id_conflict" and receipts[2]["stage"] == "ingest"
    with hub.db() as conn:
        listed = books.rejections(conn)  # what `roamclear rejected list` shows
        assert [(r["reason_code"], r["stage"], r["submitter"]) for r in listed] == [
            ("cdr_id_conflict", "ingest", "NL*TNM")
        ]
        assert books.ingest_counts(conn) == {
            "received_http": 3,
            "accepted_http": 1,
            "duplicates_http": 1,
            "rejected_at_ingest": 1,
            "unpublished_http": 0,
        }
        # an operator cannot re-submit it: the hub never vouched for it
        planned = retries.plan(conn, [listed[0]["rejection_id"]], force=True)
        assert not planned.retries
        assert "stage ingest" in planned.refused[listed[0]["rejection_id"]]
    figures = current_counts(hub.settings)  # `roamclear counts --json`
    assert (figures["received_http"], figures["rejected_at_ingest"]) == (3, 1)
    assert figures["submitted"] == 1 and figures["pending"] == 1  # the worker has not run
    # the GET still returns the accepted CDR, not the conflicting one
    kept = hub.client.get(_path(first.headers["location"]), headers=hub.auth())
    assert "remark" not in loads_exact(kept.content)["data"]


def test_invalid_json_is_400_kept_and_not_published(hub: Hub) -> None:
    answer = hub.post(b'{"country_code": "NL", "id": ')
    assert answer.status_code == 400
    body = answer.json()
    assert body["status_code"] == 2001 and "not JSON" in body["status_message"]
    assert topic_records(hub.settings) == []
    (receipt,) = _receipts(hub)
    assert (receipt["outcome"], receipt["reason_code"]) == ("REJECTED", "malformed_json")
    assert bytes(receipt["body"]) == b'{"country_code": "NL", "id": '
    assert receipt["archive_id"] is None and receipt["payload"] == '{"country_code": "NL", "id": '


def test_a_schema_invalid_cdr_is_200_2001_with_every_path_and_kept(hub: Hub) -> None:
    cdr = cdr_dict(2)
    cdr["charging_periods"][0]["dimensions"][1]["volume"] = -1
    del cdr["currency"]
    answer = hub.post(cdr)
    assert answer.status_code == 200
    body = answer.json()
    assert body["status_code"] == 2001
    assert "charging_periods[0].dimensions[1].volume: must be >= 0" in body["status_message"]
    assert "currency: field required" in body["status_message"]
    assert topic_records(hub.settings) == []
    (receipt,) = _receipts(hub)
    assert receipt["reason_code"] == "schema_invalid" and receipt["stage"] == "ingest"
    assert receipt["cdr_key"] == f"NL*TNM*{cdr['id']}".upper()
    with hub.db() as conn:
        (listed,) = books.rejections(conn)
        paths = {v["path"] for v in listed["violations"]}
        assert paths == {"charging_periods[0].dimensions[1].volume", "currency"}


def test_too_many_periods_is_2001_naming_the_limit(hub: Hub) -> None:
    cdr = cdr_dict(0)
    cdr["charging_periods"] = cdr["charging_periods"] * 1001
    answer = hub.post(cdr)
    assert answer.status_code == 200 and answer.json()["status_code"] == 2001
    assert "charging_periods: at most 1000 elements" in answer.json()["status_message"]
    assert topic_records(hub.settings) == []


def test_a_cpo_token_cannot_submit_for_another_cpo(hub: Hub) -> None:
    cdr = cdr_dict(0)  # NL*TNM's CDR, sent with NL*ABC's token
    answer = hub.post(cdr, "ABC")
    assert answer.status_code == 200
    assert answer.json()["status_code"] == 2001
    assert "not_owner" in answer.json()["status_message"]
    assert topic_records(hub.settings) == []
    (receipt,) = _receipts(hub)
    assert (receipt["partner"], receipt["reason_code"], receipt["submitter"]) == (
        "NL*ABC",
        "not_owner",
        "NL*ABC",
    )
    # and NL*TNM's own POST of it is not a conflict with the refused one
    assert hub.post(cdr).status_code == 201


def test_a_partner_reads_only_its_own_cdrs(hub: Hub) -> None:
    cdr = cdr_dict(0)
    location = _path(hub.post(cdr).headers["location"])
    other = hub.client.get(location, headers=hub.auth("ABC"))
    assert other.status_code == 404 and other.json()["status_code"] == 2000
    assert hub.client.get(f"{CDRS}/NOPE", headers=hub.auth()).status_code == 404
    # CDRs cannot be changed over OCPI: PUT, PATCH and DELETE are not there
    assert hub.client.put(location, headers=hub.auth()).status_code == 405


def test_the_registration_token_and_no_token_are_401_and_nothing_is_kept(hub: Hub) -> None:
    assert hub.post(cdr_dict(0), "A").status_code == 401
    assert hub.client.post(CDRS, content=b"{}").status_code == 401
    assert _receipts(hub) == []
    assert topic_records(hub.settings) == []


def test_unknown_fields_are_kept_to_the_topic_and_the_get(hub: Hub) -> None:
    cdr = {**cdr_dict(0), "vendor_extension": {"gireve_id": "X-1", "rate": 0.25}}
    answer = hub.post(cdr)
    assert answer.status_code == 201
    got = hub.client.get(_path(answer.headers["location"]), headers=hub.auth())
    assert loads_exact(got.content)["data"]["vendor_extension"] == cdr["vendor_extension"]
    (record,) = topic_records(hub.settings)
    on_topic = loads_exact(record.value or b"")["cdr"]
    assert on_topic["vendor_extension"] == cdr["vendor_extension"]


def test_request_ids_are_echoed_and_kept_with_the_body(hub: Hub) -> None:
    sent = {"X-Request-ID": "req-cdr-1", "X-Correlation-ID": "corr-cdr-1"}
    answer = hub.post(cdr_dict(0), **sent)
    assert answer.headers["x-request-id"] == "req-cdr-1"
    assert answer.headers["x-correlation-id"] == "corr-cdr-1"
    with hub.db() as conn:
        (receipt,) = ocpi_cdrs.receipts_of_request(conn, "req-cdr-1")
    assert receipt["correlation_id"] == "corr-cdr-1" and receipt["outcome"] == "ACCEPTED"
    assert receipt["offset"] is not None


def test_a_body_over_the_limit_is_413_and_kept_unread(hub: Hub) -> None:
    cdr = {**cdr_dict(0), "remark": "x" * BODY_BYTES_MAX}
    answer = hub.post(cdr)
    assert answer.status_code == 413
    assert answer.json()["status_code"] == 2001
    assert f"at most {BODY_BYTES_MAX}" in answer.json()["status_message"]
    assert topic_records(hub.settings) == []
    (receipt,) = _receipts(hub)
    assert receipt["reason_code"] == "body_too_large" and bytes(receipt["body"]) == b""
    assert receipt["body_bytes"] > BODY_BYTES_MAX


def test_beyond_its_rate_a_partner_gets_429_with_retry_after(fresh_settings: Settings) -> None:
    settings = replace(fresh_settings, public_url=PUBLIC, ocpi_rate_limits="NL*TNM=0.5/2")
    for hub in _hub(settings):
        first, second, third = (hub.post(cdr_dict(i)) for i in range(3))
        assert (first.status_code, second.status_code) == (201, 201)
        assert third.status_code == 429
        assert third.headers["retry-after"] == "2"  # one token back at 0.5/s
        assert "NL*TNM may send 0.5 per second" in third.json()["status_message"]
        # another partner has a bucket of its own (the default)
        assert hub.post(cdr_dict(0), "ABC").status_code == 200
        assert len(topic_records(hub.settings)) == 2


def test_a_record_claiming_the_api_without_the_hubs_proof_is_rejected(hub: Hub) -> None:
    assert hub.post(cdr_dict(0)).status_code == 201
    (signed,) = topic_records(hub.settings)
    # the same value, produced without the proof (as anyone on the Kafka network could)
    submit(hub.settings, [(signed.key or b"", signed.value or b"")], sign=False)
    records = topic_records(hub.settings)
    forged = [r for r in records if r.offset != signed.offset or r.partition != signed.partition]
    assert [dict(r.headers).get(KEY_HEADER) for r in forged] == [None]
    result = asyncio.run(_clear(hub.settings, forged))
    assert result.outcomes == Counter({"rejected": 1})
    with hub.db() as conn:
        (rejection,) = books.rejections(conn, reason="unauthenticated_submitter")
        assert rejection["submitter"] is None
    # the API's own record still books
    assert asyncio.run(_clear(hub.settings, [signed])).outcomes == Counter({"booked": 1})


def test_a_cdr_the_broker_did_not_take_is_published_by_the_retry(
    fresh_settings: Settings,
) -> None:
    settings = replace(fresh_settings, public_url=PUBLIC)
    dead_broker = replace(settings, kafka_bootstrap_servers="127.0.0.1:1")
    cdr = cdr_dict(0)
    for hub in _hub(settings, dead_broker):
        failed = hub.post(cdr)
        assert failed.status_code == 503 and failed.json()["status_code"] == 3000
        assert failed.headers["retry-after"] == "2"
        with hub.db() as conn:
            assert books.ingest_counts(conn)["unpublished_http"] == 1
        tokens = hub.tokens
    # the same database, a broker that works: the partner's retry publishes the claim
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        token = base64.b64encode(tokens["TNM"].encode()).decode()
        retry = client.post(
            CDRS, content=encode_json(cdr).encode(), headers={"Authorization": f"Token {token}"}
        )
        assert retry.status_code == 201, retry.text
    assert len(topic_records(fresh_settings)) == 1
    assert fresh_settings.database_url
    with connect(fresh_settings.database_url) as conn:
        counts = books.ingest_counts(conn)
    assert counts["unpublished_http"] == 0 and counts["duplicates_http"] == 1


def test_the_same_cdr_sent_at_once_is_accepted_once(hub: Hub) -> None:
    cdr = encode_json(cdr_dict(2)).encode()
    other = encode_json({**cdr_dict(2), "remark": "other"}).encode()

    async def send_all() -> list[int]:
        async with httpx.AsyncClient(base_url=str(hub.client.base_url), timeout=30) as client:
            answers = await asyncio.gather(
                *(client.post(CDRS, content=body, headers=hub.auth()) for body in [cdr] * 6)
            )
            late = await client.post(CDRS, content=other, headers=hub.auth())
        return [a.status_code for a in answers] + [late.json()["status_code"]]

    statuses = asyncio.run(send_all())
    assert sorted(statuses[:6]) == [200, 200, 200, 200, 200, 201] and statuses[6] == 2001
    assert len(topic_records(hub.settings)) == 1
    outcomes = Counter(r["outcome"] for r in _receipts(hub))
    assert outcomes == Counter({"ACCEPTED": 1, "DUPLICATE": 5, "REJECTED": 1})


def test_an_id_that_is_no_url_segment_still_has_a_location(hub: Hub) -> None:
    cdr = cdr_dict(0, id="CDR/7?#1")
    answer = hub.post(cdr)
    assert answer.status_code == 201
    assert answer.headers["location"] == f"{PUBLIC}{CDRS}/CDR%2F7%3F%231"
    got = hub.client.get(_path(answer.headers["location"]), headers=hub.auth())
    assert got.status_code == 200 and loads_exact(got.content)["data"]["id"] == "CDR/7?#1"


def test_with_postgresql_gone_a_cdr_is_503_and_nothing_is_accepted(
    fresh_settings: Settings, tmp_path: Path
) -> None:
    """A throwaway embedded PostgreSQL of this test's own (the shared one must not stop)."""
    pgdata = tmp_path / "pgdata"
    handle = start_postgres(pgdata)
    try:
        apply_migrations(handle.url)
        settings = replace(fresh_settings, database_url=handle.url, public_url=PUBLIC)
        first, second = cdr_dict(0), cdr_dict(1)
        for hub in _hub(settings):
            assert hub.post(first).status_code == 201
            stop_postgres(pgdata)
            for _ in range(2):  # the token believed from the cache, then looked up
                down = hub.post(second)
                assert down.status_code == 503, down.text
                assert down.json()["status_code"] == 3000 and int(down.headers["retry-after"]) > 0
                time.sleep(TOKEN_CACHE_S + 0.1)
            _restart(pgdata)
            deadline = time.monotonic() + 30
            while (again := hub.post(second)).status_code == 503:
                assert time.monotonic() < deadline, again.text
                time.sleep(0.5)
            assert again.status_code == 201, again.text  # it had not been accepted before
        assert len(topic_records(settings)) == 2
    finally:
        stop_postgres(pgdata)


def test_text_postgresql_cannot_store_is_refused_and_still_kept(hub: Hub) -> None:
    body = encode_json(cdr_dict(0, id="CDR-\u0000", remark="a\u0000b")).encode()
    answer = hub.post(body)
    assert answer.status_code == 200 and answer.json()["status_code"] == 2001
    assert "remark: must not contain the NUL character" in answer.json()["status_message"]
    (receipt,) = _receipts(hub)
    # the body as sent (its NUL escaped, as JSON has it); the key as text PostgreSQL stores
    assert bytes(receipt["body"]) == body and receipt["payload"] == body.decode()
    assert receipt["cdr_key"] == "NL*TNM*CDR-\ufffd"
