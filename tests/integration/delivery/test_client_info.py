"""HubClientInfo against real HTTP servers and PostgreSQL: the still-alive check marks a
party OFFLINE and CONNECTED again, every connected party with a receiver gets each other
partner's ClientInfo once per change, and deliveries to an OFFLINE eMSP wait for it."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace

import httpx
import pytest

from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.delivery.app import delivery_session
from pipeline.delivery.client_info import ClientInfoService
from pipeline.delivery.dispatcher import Dispatcher
from pipeline.hubkeys import load_hub_keyring
from schemas.hub.party import PartyRef
from settlement.store.db import connect, connect_async
from tests.integration.clearing.helpers import cdr_dict
from tests.integration.delivery.emsp import FakeEmsp, connect_emsp
from tests.integration.delivery.test_dispatch import FAST, _book, _counts, _for, _intake
from tests.integration.settlement.http import free_port, serve

pytestmark = pytest.mark.integration
EMP, EVB = PartyRef.parse("DE*EMP"), PartyRef.parse("BE*EVB")


def _service(settings: Settings, client: httpx.AsyncClient) -> ClientInfoService:
    return ClientInfoService(load_hub_keyring(settings), client, 0.0, 1.0)


def _statuses(emsp: FakeEmsp) -> list[tuple[str, str]]:
    return [(f"{i['country_code']}*{i['party_id']}", i["status"]) for i in emsp.client_infos]


def test_parties_learn_who_is_reachable_once_per_change(fresh_settings: Settings) -> None:
    _book(fresh_settings, [cdr_dict(0)])  # registers NL*TNM, NL*ABC, DE*EMP, BE*EVB
    emp, evb = FakeEmsp(), FakeEmsp(up=False)
    evb_port = free_port()
    with emp.serving() as emp_url, evb.serving(evb_port) as evb_url:
        connect_emsp(fresh_settings, EMP, emp_url, emp.token, "hubclientinfo")
        connect_emsp(fresh_settings, EVB, evb_url, evb.token, "hubclientinfo")

        async def rounds(count: int) -> None:
            async with httpx.AsyncClient() as client:
                service = _service(fresh_settings, client)
                for _ in range(count):
                    conn = await connect_async(
                        role_url(fresh_settings, DbRole.DELIVERER), autocommit=True
                    )
                    try:
                        await service.tick(conn)
                    finally:
                        await conn.close()

        asyncio.run(rounds(2))  # the second round owes nothing new
        assert sorted(_statuses(emp)) == [
            ("BE*EVB", "OFFLINE"),  # its versions endpoint answers 503
            ("NL*ABC", "PLANNED"),  # registered, never connected over OCPI
            ("NL*TNM", "PLANNED"),
        ]
        assert evb.client_infos == []  # OFFLINE: nothing is pushed to it
        evb.up = True
        asyncio.run(rounds(1))
        assert _statuses(emp)[-1] == ("BE*EVB", "CONNECTED")
        assert sorted(_statuses(evb)) == [("DE*EMP", "CONNECTED"), ("NL*ABC", "PLANNED"),
                                          ("NL*TNM", "PLANNED")]  # fmt: skip
        assert all(i["role"] in ("CPO", "EMSP") for i in emp.client_infos + evb.client_infos)
        assert fresh_settings.database_url is not None
        with connect(fresh_settings.database_url) as conn:
            changes = conn.execute(
                "SELECT partner, reachable, error FROM partner_liveness ORDER BY seq"
            ).fetchall()
    assert [(c["partner"], c["reachable"]) for c in changes] == [
        ("BE*EVB", False),
        ("BE*EVB", True),
    ]
    assert "HTTP 503" in changes[0]["error"]


def test_deliveries_to_an_offline_emsp_wait_and_resume(fresh_settings: Settings) -> None:
    _book(fresh_settings, [_for(EVB, 1, "CDR-EVB-1")])
    evb = FakeEmsp(up=False)
    with evb.serving() as url:
        connect_emsp(fresh_settings, EVB, url, evb.token)
        _intake(fresh_settings)

        async def run(seconds: float, until_delivered: bool = False) -> None:
            policy = replace(FAST, retry=replace(FAST.retry, attempts_max=1))
            async with httpx.AsyncClient() as client, delivery_session(policy) as session:
                dispatcher = Dispatcher(
                    role_url(fresh_settings, DbRole.DELIVERER),
                    load_hub_keyring(fresh_settings),
                    policy,
                    session,
                    _service(fresh_settings, client),
                )
                task = asyncio.create_task(dispatcher.run())
                deadline = asyncio.get_running_loop().time() + seconds
                while asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.2)
                    if until_delivered and _counts(fresh_settings)["DELIVERED"]:
                        break
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

        asyncio.run(run(1.5))
        # OFFLINE: not one attempt spent (one failed attempt would have made it DEAD)
        assert _counts(fresh_settings)["PENDING"] == 1 and evb.received == []
        evb.up = True
        asyncio.run(run(10.0, until_delivered=True))
    assert _counts(fresh_settings)["DELIVERED"] == 1
    assert [r.cdr["id"] for r in evb.received] == ["CDR-EVB-1"]


def test_a_party_gets_every_other_party_s_client_info(fresh_settings: Settings) -> None:
    _book(fresh_settings, [cdr_dict(0)])
    emp = FakeEmsp()
    with emp.serving() as url:
        token = connect_emsp(fresh_settings, EMP, url, emp.token)
    header = {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}
    with serve(fresh_settings) as api, httpx.Client(base_url=api, timeout=30) as client:
        details = client.get("/ocpi/2.2.1", headers=header).json()["data"]["endpoints"]
        assert {"identifier": "hubclientinfo", "role": "SENDER"}.items() <= next(
            e for e in details if e["identifier"] == "hubclientinfo"
        ).items()
        first = client.get("/ocpi/2.2.1/hubclientinfo", params={"limit": 2}, headers=header)
        assert first.status_code == 200 and first.headers["X-Total-Count"] == "3"
        following = httpx.URL(first.headers["Link"].split(";")[0].strip("<>"))  # public URL
        rest = client.get(following.raw_path.decode(), headers=header)
        listed = first.json()["data"] + rest.json()["data"]
        assert "Link" not in rest.headers
        assert [(i["country_code"], i["party_id"], i["role"], i["status"]) for i in listed] == [
            ("BE", "EVB", "EMSP", "PLANNED"),
            ("NL", "ABC", "CPO", "PLANNED"),
            ("NL", "TNM", "CPO", "PLANNED"),
        ]  # not the caller itself
        bad = client.get("/ocpi/2.2.1/hubclientinfo", params={"offset": "-1"}, headers=header)
        assert bad.status_code == 400 and bad.json()["status_code"] == 2001
        assert client.get("/ocpi/2.2.1/hubclientinfo").status_code == 401
