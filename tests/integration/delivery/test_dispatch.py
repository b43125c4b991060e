"""Delivering booked CDRs to eMSPs, against the real PostgreSQL, broker and HTTP servers: a
batch is cleared, the intake reads the worker's events from the topics, and the dispatcher
POSTs to fake eMSPs that fail as scripted."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest

from pipeline.api.tokens import create_token
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.delivery import intake
from pipeline.delivery.app import delivery_session
from pipeline.delivery.dispatcher import Dispatcher, DispatchPolicy
from pipeline.hubkeys import load_hub_keyring
from pipeline.kafka.client import read_from_beginning, records_in_topic
from pipeline.topics import Topic, topic_name
from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from settlement.delivery.retry import RetryPolicy
from settlement.store import deliveries
from settlement.store.db import connect, connect_async
from settlement.store.deliveries import DeliveryState
from tests.integration.clearing.helpers import (
    cdr_dict,
    credit_of,
    envelope,
    register_reference_data,
    submit,
)
from tests.integration.clearing.test_batch import _clear
from tests.integration.delivery.emsp import FakeEmsp, connect_emsp
from tests.integration.settlement.http import free_port, serve

pytestmark = pytest.mark.integration

EMP, EVB = PartyRef.parse("DE*EMP"), PartyRef.parse("BE*EVB")
FAST = DispatchPolicy(
    retry=RetryPolicy(base_s=0.05, factor=2.0, cap_s=0.2, attempts_max=4),
    concurrency=4,
    timeout_s=1.0,
    lease_s=5.0,
)
WAIT_S_MAX = 30.0


def _key(cdr: dict[str, object]) -> bytes:
    """The Kafka key a partner uses: a credit keyed by the CDR it credits (one partition)."""
    cdr_id = cdr.get("credit_reference_id") or cdr["id"]
    return f"{cdr['country_code']}*{cdr['party_id']}*{cdr_id}".encode()


def _for(emsp: PartyRef, index: int, cdr_id: str) -> dict[str, object]:
    cdr = cdr_dict(index, id=cdr_id)
    cdr["cdr_token"] = {
        **cdr["cdr_token"],
        "country_code": emsp.country_code,
        "party_id": emsp.party_id,
    }
    return cdr


def _book(settings: Settings, cdrs: list[dict[str, object]]) -> None:
    register_reference_data(settings)
    records = [(_key(cdr), envelope(cdr)) for cdr in cdrs]
    asyncio.run(_clear(settings, submit(settings, records)))


def _intake(settings: Settings) -> int:
    """What the delivery agent does with every event the clearing worker sent."""
    assert settings.kafka_bootstrap_servers is not None
    announced = []
    for topic in (Topic.CDR_RATED, Topic.LEDGER_TRANSACTIONS):
        name = topic_name(settings.topic_prefix, topic)
        count = asyncio.run(records_in_topic(settings.kafka_bootstrap_servers, name))
        for record in asyncio.run(
            read_from_beginning(settings.kafka_bootstrap_servers, name, count)
        ):
            found = intake.announced(record.value)
            if found is not None:
                announced.append(found)

    async def take() -> int:
        conn = await connect_async(role_url(settings, DbRole.DELIVERER))
        try:
            return await intake.take(conn, announced)
        finally:
            await conn.close()

    return asyncio.run(take())


def _dispatch_until(
    settings: Settings, done: Callable[[dict[str, int]], bool], policy: DispatchPolicy = FAST
) -> dict[str, int]:
    """Run a dispatcher (as `roamclear deliver` does) until `done(counts)` holds."""

    async def run() -> dict[str, int]:
        async with delivery_session(policy) as session:
            dispatcher = Dispatcher(
                role_url(settings, DbRole.DELIVERER), load_hub_keyring(settings), policy, session
            )
            task = asyncio.create_task(dispatcher.run())
            deadline = time.monotonic() + WAIT_S_MAX
            try:
                while True:
                    per_state = _counts(settings)
                    if done(per_state) or time.monotonic() > deadline:
                        return per_state
                    assert not task.done(), task.exception()
                    await asyncio.sleep(0.1)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    return asyncio.run(run())


def _counts(settings: Settings) -> dict[str, int]:
    assert settings.database_url is not None
    with connect(settings.database_url) as conn:
        return deliveries.counts(conn)


def _token(header: str) -> str:
    return base64.b64decode(header.removeprefix("Token ")).decode()


def test_every_booking_reaches_its_emsp_once_a_credit_after_its_cdr(
    fresh_settings: Settings,
) -> None:
    cdrs = [cdr_dict(0), cdr_dict(2), credit_of(0)]  # DE*EMP's
    _book(fresh_settings, [*cdrs, cdr_dict(1)])  # cdr_dict(1) is BE*EVB's, which pulls
    emsp = FakeEmsp(token="emp-token")
    with emsp.serving() as url:
        connect_emsp(fresh_settings, EMP, url, emsp.token)
        assert _intake(fresh_settings) == 4  # BE*EVB's kept for it to pull
        assert _intake(fresh_settings) == 0  # events read again create nothing
        final = _dispatch_until(fresh_settings, lambda c: c["DELIVERED"] == 3)
    assert final == {"PULL": 1, "PENDING": 0, "RETRYING": 0, "DELIVERED": 3, "DEAD": 0}
    sent = emsp.received
    ids = [r.cdr["id"] for r in sent]
    assert sorted(ids) == sorted(str(c["id"]) for c in cdrs)  # each once, only its own
    assert ids.index(str(credit_of(0)["id"])) > ids.index(str(cdr_dict(0)["id"]))
    first = next(r for r in sent if r.cdr["id"] == cdr_dict(0)["id"])
    credit = next(r for r in sent if r.cdr["id"] == credit_of(0)["id"])
    assert _token(first.headers["authorization"]) == "emp-token"
    assert (first.headers["ocpi-from-country-code"], first.headers["ocpi-from-party-id"]) == (
        "NL",
        "TNM",
    )
    assert (first.headers["ocpi-to-country-code"], first.headers["ocpi-to-party-id"]) == (
        "DE",
        "EMP",
    )
    assert len({r.headers["x-request-id"] for r in sent}) == 3
    # the CPO's CDR, its last_updated untouched, priced as the agreement settles (the hub's)
    original = cdr_dict(0)
    assert first.cdr["last_updated"] == original["last_updated"]
    assert first.cdr["cdr_token"] == original["cdr_token"]
    assert str(first.cdr["remark"]).startswith("[*]")
    assert credit.cdr["credit"] is True
    assert credit.cdr["total_cost"] == {k: -v for k, v in first.cdr["total_cost"].items()}
    assert credit.cdr["remark"] == first.cdr["remark"]
    assert fresh_settings.database_url is not None
    with connect(fresh_settings.database_url) as conn:
        booked = conn.execute(
            "SELECT amount_excl_vat, amount_incl_vat FROM ledger_transaction WHERE cdr_key = %s",
            (f"NL*TNM*{original['id']}",),
        ).fetchone()
        assert booked is not None
        assert first.cdr["total_cost"] == {
            "excl_vat": booked["amount_excl_vat"],
            "incl_vat": booked["amount_incl_vat"],
        }
        (detail,) = deliveries.show(conn, f"NL*TNM*{original['id']}")
    # the audit trail: the successful attempt's request id and the eMSP's Location
    assert detail.delivery.request_id == first.headers["x-request-id"]
    assert detail.delivery.emsp_location == f"https://emsp.example/cdrs/{original['id']}"
    assert detail.delivery.correlation_id == first.headers["x-correlation-id"]
    assert [a.delivered for a in detail.attempts] == [True]
    assert detail.document == first.body


def test_failures_are_retried_until_delivered_and_every_attempt_is_kept(
    fresh_settings: Settings,
) -> None:
    _book(fresh_settings, [cdr_dict(0)])
    emsp = FakeEmsp(script=[500, "slow", "html", "ocpi2001", 201])
    with emsp.serving() as url:
        connect_emsp(fresh_settings, EMP, url, emsp.token)
        _intake(fresh_settings)
        policy = replace(FAST, retry=replace(FAST.retry, attempts_max=6))
        final = _dispatch_until(fresh_settings, lambda c: c["DELIVERED"] == 1, policy)
    assert final["DELIVERED"] == 1
    assert len(emsp.ok()) == 1 and len(emsp.received) == 5
    assert fresh_settings.database_url is not None
    with connect(fresh_settings.database_url) as conn:
        (detail,) = deliveries.show(conn, f"NL*TNM*{cdr_dict(0)['id']}")
    errors = [a.error for a in detail.attempts]
    assert errors[0] == "HTTP 500, OCPI 3000"
    assert errors[1] == "no answer within 1.0 s"
    assert errors[2] == "HTTP 200 without an OCPI answer"
    assert errors[3] == 'HTTP 200, OCPI 2001 "no"'
    assert [a.delivered for a in detail.attempts] == [False, False, False, False, True]
    # every attempt sent the same bytes under a new request id, with one correlation id
    assert len({r.body for r in emsp.received}) == 1
    assert len({r.headers["x-request-id"] for r in emsp.received}) == 5
    assert len({r.headers["x-correlation-id"] for r in emsp.received}) == 1


def test_a_dead_emsp_delays_nobody_and_is_delivered_once_requeued(
    fresh_settings: Settings,
) -> None:
    cdrs = [_for(EMP, 0, "CDR-EMP-1"), _for(EVB, 1, "CDR-EVB-1"), _for(EVB, 2, "CDR-EVB-2")]
    _book(fresh_settings, cdrs)
    dead_port = free_port()
    alive = FakeEmsp(token="evb-token")
    with alive.serving() as url:
        connect_emsp(fresh_settings, EMP, f"http://127.0.0.1:{dead_port}", "emp-token")
        connect_emsp(fresh_settings, EVB, url, alive.token)
        _intake(fresh_settings)
        started = time.monotonic()
        final = _dispatch_until(fresh_settings, lambda c: c["DEAD"] == 1 and c["DELIVERED"] == 2)
    assert final == {"PULL": 0, "PENDING": 0, "RETRYING": 0, "DELIVERED": 2, "DEAD": 1}
    assert time.monotonic() - started < WAIT_S_MAX
    assert sorted(r.cdr["id"] for r in alive.received) == ["CDR-EVB-1", "CDR-EVB-2"]
    assert fresh_settings.database_url is not None
    with connect(fresh_settings.database_url) as conn:
        (dead,) = deliveries.list_deliveries(conn, str(EMP), DeliveryState.DEAD)
        assert dead.attempts == FAST.retry.attempts_max
        assert dead.last_error is not None and "cannot reach" in dead.last_error
    # the eMSP comes back on its port; re-queued, its CDR arrives once
    back = FakeEmsp(token="emp-token")
    with back.serving(dead_port):
        with connect(role_url(fresh_settings, DbRole.OPERATOR)) as conn:
            assert deliveries.requeue(conn, partner=str(EMP)) == [dead.delivery_id]
        final = _dispatch_until(fresh_settings, lambda c: c["DELIVERED"] == 3)
    assert final["DELIVERED"] == 3
    assert [r.cdr["id"] for r in back.received] == ["CDR-EMP-1"]


def test_an_emsp_that_pulls_gets_no_pushes(fresh_settings: Settings) -> None:
    """Without a cdrs RECEIVER endpoint (not registered over OCPI) nothing is pushed: the CDR
    and its credit are kept, as the eMSP would have received them, for it to pull."""
    _book(fresh_settings, [cdr_dict(0), credit_of(0)])
    assert _intake(fresh_settings) == 2
    assert _counts(fresh_settings) == {
        "PULL": 2,
        "PENDING": 0,
        "RETRYING": 0,
        "DELIVERED": 0,
        "DEAD": 0,
    }
    assert fresh_settings.database_url is not None
    with connect(fresh_settings.database_url) as conn:
        (charge,) = deliveries.show(conn, f"NL*TNM*{cdr_dict(0)['id']}")
        (credit,) = deliveries.show(conn, f"NL*TNM*{credit_of(0)['id']}")
        with connect(role_url(fresh_settings, DbRole.OPERATOR)) as operator:
            with pytest.raises(ValueError, match="never sent again"):
                deliveries.requeue(operator, state=DeliveryState.PULL)
            assert deliveries.requeue(operator, [charge.delivery.delivery_id]) == []
    assert credit.delivery.kind == "REVERSAL" and credit.attempts == ()
    original, mirrored = loads_exact(charge.document), loads_exact(credit.document)
    assert mirrored["total_cost"] == {k: -v for k, v in original["total_cost"].items()}


def test_a_reversal_announced_before_its_original_waits_for_it(
    fresh_settings: Settings,
) -> None:
    """The two events come on two topics in no order: a credit whose original's delivery is
    not there yet waits, and follows it."""
    _book(fresh_settings, [cdr_dict(0), credit_of(0)])
    assert fresh_settings.kafka_bootstrap_servers is not None
    rated, booked = [], []
    for topic, into in ((Topic.CDR_RATED, rated), (Topic.LEDGER_TRANSACTIONS, booked)):
        name = topic_name(fresh_settings.topic_prefix, topic)
        count = asyncio.run(records_in_topic(fresh_settings.kafka_bootstrap_servers, name))
        for record in asyncio.run(
            read_from_beginning(fresh_settings.kafka_bootstrap_servers, name, count)
        ):
            if (found := intake.announced(record.value)) is not None:
                into.append(found)
    assert len(rated) == 1 and len(booked) == 1

    async def take(events: list[intake.Announced]) -> int:
        conn = await connect_async(role_url(fresh_settings, DbRole.DELIVERER))
        try:
            return await intake.take(conn, events)
        finally:
            await conn.close()

    assert asyncio.run(take(booked)) == 0  # the credit first: it waits
    assert asyncio.run(take(rated)) == 2  # its original, and then the credit
    assert sum(_counts(fresh_settings).values()) == 2


def test_what_was_delivered_cannot_change(fresh_settings: Settings) -> None:
    _book(fresh_settings, [cdr_dict(0)])
    emsp = FakeEmsp()
    with emsp.serving() as url:
        connect_emsp(fresh_settings, EMP, url, emsp.token)
        _intake(fresh_settings)
        _dispatch_until(fresh_settings, lambda c: c["DELIVERED"] == 1)
    with connect(role_url(fresh_settings, DbRole.DELIVERER)) as conn:
        for change in (
            "UPDATE cdr_delivery SET state = 'RETRYING'",
            "UPDATE cdr_delivery SET document = 'x'",
            "UPDATE cdr_delivery_attempt SET error = 'x'",
            "DELETE FROM cdr_delivery_attempt",
        ):
            refused = r"cannot change|final|finished once|append-only|permission"
            with pytest.raises(psycopg.Error, match=refused), conn.transaction():
                conn.execute(change)
    with connect(role_url(fresh_settings, DbRole.OPERATOR)) as conn:
        assert deliveries.requeue(conn, state=DeliveryState.DEAD) == []
        with pytest.raises(ValueError, match="never sent again"):
            deliveries.requeue(conn, state=DeliveryState.DELIVERED)


def test_finance_sees_every_delivery_and_a_partner_those_of_its_own_cdrs(
    fresh_settings: Settings,
) -> None:
    _book(fresh_settings, [cdr_dict(0), cdr_dict(1)])  # DE*EMP's, BE*EVB's
    emsp = FakeEmsp()
    assert fresh_settings.database_url is not None
    with emsp.serving() as url:
        connect_emsp(fresh_settings, EMP, url, emsp.token)
        _intake(fresh_settings)
        _dispatch_until(fresh_settings, lambda c: c["DELIVERED"] == 1)
    with connect(fresh_settings.database_url) as conn:
        tokens = {
            "finance": create_token(conn, None, "test"),
            "emp": create_token(conn, "DE*EMP"),
            "evb": create_token(conn, "BE*EVB"),
            "tnm": create_token(conn, "NL*TNM"),
        }
        conn.commit()
    with serve(fresh_settings) as api, httpx.Client(base_url=api, timeout=30) as client:

        def get(token: str, path: str = "/finance/v1/deliveries", **params: object) -> Any:
            return client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})

        everything = get(tokens["finance"])
        assert everything.status_code == 200
        assert everything.json()["counts"]["DELIVERED"] == 1
        assert {d["emsp"] for d in everything.json()["deliveries"]} == {"DE*EMP", "BE*EVB"}
        assert everything.headers["X-Total-Count"] == "2"
        page = get(tokens["finance"], limit=1)
        assert len(page.json()["deliveries"]) == 1 and "offset=1" in page.headers["Link"]
        own = get(tokens["emp"]).json()["deliveries"]
        assert [(d["emsp"], d["state"]) for d in own] == [("DE*EMP", "DELIVERED")]
        assert [d["state"] for d in get(tokens["evb"]).json()["deliveries"]] == ["PULL"]
        assert len(get(tokens["tnm"]).json()["deliveries"]) == 2  # the CPO: both its CDRs
        assert get(tokens["emp"], partner="BE*EVB").status_code == 403
        assert get(tokens["emp"], state="nonsense").status_code == 422
        evb_id = get(tokens["evb"]).json()["deliveries"][0]["delivery_id"]
        emp_id = own[0]["delivery_id"]
        detail = get(tokens["emp"], f"/finance/v1/deliveries/{emp_id}")
        assert detail.status_code == 200
        assert [a["delivered"] for a in detail.json()["attempt_log"]] == [True]
        assert get(tokens["emp"], f"/finance/v1/deliveries/{evb_id}").status_code == 404
        assert get(tokens["emp"], "/finance/v1/deliveries/999999").status_code == 404
        assert client.get("/finance/v1/deliveries").status_code == 401


def test_a_credit_held_by_its_dead_original_does_not_keep_its_loop_polling(
    fresh_settings: Settings,
) -> None:
    _book(fresh_settings, [cdr_dict(0), credit_of(0)])  # DE*EMP's CDR and its credit
    connect_emsp(fresh_settings, EMP, f"http://127.0.0.1:{free_port()}", "emp-token")
    assert _intake(fresh_settings) == 2
    final = _dispatch_until(fresh_settings, lambda c: c["DEAD"] == 1)
    assert final == {"PULL": 0, "PENDING": 1, "RETRYING": 0, "DELIVERED": 0, "DEAD": 1}

    async def due(emsp: PartyRef) -> float | None:
        assert fresh_settings.database_url is not None
        conn = await connect_async(fresh_settings.database_url, autocommit=True)
        try:
            return await deliveries.next_due_in_s(conn, str(emsp))
        finally:
            await conn.close()

    # the credit is PENDING and due, but not claimable until its original is delivered:
    # "nothing waits" (the loop sleeps its idle poll), not "due now" (it would spin); the
    # same for an eMSP with nothing at all
    assert asyncio.run(due(EMP)) is None
    assert asyncio.run(due(EVB)) is None
