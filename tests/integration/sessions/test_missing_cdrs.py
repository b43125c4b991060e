"""The missing-CDR report over real clearing and real session events: a completed session
without a booked CDR is listed after its agreement's deadline and not before, one with its
CDR is not, an INVALID one never is, a stale unfinished one is listed as stale; a CDR that
came and was rejected is named; a forged CDR does not make a session look served. The same
list over the finance API, per token."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pipeline.api.tokens import create_token
from pipeline.config import Settings
from schemas.hub.agreement import Agreement
from settlement.sessions.missing import FindingKind
from settlement.store import missing_cdrs, reference_store
from settlement.store.db import connect
from tests.integration.clearing.helpers import (
    cdr_dict,
    envelope,
    register_reference_data,
    sample,
    submit,
    topic_records,
)
from tests.integration.clearing.test_batch import _clear
from tests.integration.ocpi.sessions import session_doc
from tests.integration.sessions.helpers import key_of, produce_sessions, session_event, store
from tests.integration.settlement.http import serve

pytestmark = pytest.mark.integration
EVB_TOKEN = {"country_code": "BE", "party_id": "EVB", "uid": "u2", "type": "RFID",
             "contract_id": "BE-EVB-C1"}  # fmt: skip
NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def _completed(session_id: str, end: str, **changes: Any) -> dict[str, Any]:
    ended = {"status": "COMPLETED", "start_date_time": "2026-03-02T08:00:00Z",
             "end_date_time": end, "last_updated": end}  # fmt: skip
    return session_doc(session_id, **{**ended, **changes})


def _scenario(settings: Settings) -> None:
    """Reference data, CDRs through clearing, sessions through the session agent's store."""
    assert settings.database_url
    register_reference_data(settings)  # TNM's default agreement: no deadline set, so 48 h
    evb = dict(sample("agreement_nl_tnm_default.json"))
    evb.update(agreement_id="TNM-EVB", emsp={"country_code": "BE", "party_id": "EVB"},
               cdr_deadline_h=2)  # fmt: skip
    with connect(settings.database_url) as conn:
        reference_store.add_agreements(conn, [Agreement.model_validate(evb)])
        conn.commit()
    no_tariff = cdr_dict(0, id="CDR-NO-TARIFF", session_id="SES-0014")
    del no_tariff["tariffs"]
    for charging in no_tariff["charging_periods"]:
        charging["tariff_id"] = "NO-SUCH-TARIFF"
    cdrs = [cdr_dict(0), cdr_dict(1), no_tariff]
    forged = cdr_dict(2, id="CDR-FORGED", session_id="SES-0009")  # no proof: must not count
    submit(settings, [(b"NL*TNM*CDR-FORGED", envelope(forged))], sign=False)
    submit(settings, [(f"NL*TNM*{c['id']}".encode(), envelope(c)) for c in cdrs])
    records = topic_records(settings)
    assert len(records) == 4
    outcomes = asyncio.run(_clear(settings, records)).outcomes
    assert outcomes == {"booked": 2, "rejected": 2}  # no tariff; the forged one: no proof
    sessions = [
        (_completed("SES-0001", "2026-03-02T10:00:00Z"), "2026-03-02T10:00:05Z"),
        (
            _completed("SES-0002", "2026-03-02T17:45:00Z", cdr_token=EVB_TOKEN),
            "2026-03-02T17:46:00Z",
        ),
        (_completed("SES-0009", "2026-03-02T10:00:00Z"), "2026-03-02T10:00:05Z"),
        (
            _completed("SES-0010", "2026-03-04T00:00:00Z", cdr_token=EVB_TOKEN),
            "2026-03-04T00:00:05Z",
        ),
        (_completed("SES-0011", "2026-03-02T10:00:00Z", status="INVALID"), "2026-03-02T10:00:05Z"),
        (session_doc("SES-0012", status="ACTIVE"), "2026-03-03T00:00:00Z"),
        (session_doc("SES-0013", status="ACTIVE"), "2026-03-04T09:00:00Z"),
        (_completed("SES-0014", "2026-03-02T11:00:00Z"), "2026-03-02T11:00:05Z"),
    ]
    produced = produce_sessions(settings, [(key_of(s), session_event(s, at)) for s, at in sessions])
    assert store(settings, produced).versions == len(sessions)


@pytest.fixture
def scenario(fresh_settings: Settings) -> Settings:
    _scenario(fresh_settings)
    return fresh_settings


def _report(settings: Settings, now: datetime, partner: str | None = None) -> list[tuple[str, str]]:
    assert settings.database_url
    with connect(settings.database_url) as conn:
        findings = missing_cdrs.missing_cdrs(conn, now, 24, partner)
    return [(f.kind.value, f.session.session_id) for f in findings]


def test_missing_and_stale_sessions_each_by_their_own_deadline(scenario: Settings) -> None:
    assert _report(scenario, NOON) == [
        (FindingKind.STALE, "SES-0012"),  # no update since 03-03 00:00: due 03-04 00:00
        (FindingKind.MISSING_CDR, "SES-0010"),  # the EVB agreement's 2 h: due 03-04 02:00
        (FindingKind.MISSING_CDR, "SES-0009"),  # 48 h by default, a forged CDR does not count
        (FindingKind.MISSING_CDR, "SES-0014"),  # its CDR came and was rejected
    ]
    early = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    assert _report(scenario, early) == [("STALE", "SES-0012"), ("MISSING_CDR", "SES-0010")]
    assert _report(scenario, NOON, "BE*EVB") == [("MISSING_CDR", "SES-0010")]
    assert _report(scenario, NOON, "DE*EMS") == []


def test_a_finding_says_which_deadline_and_which_rejected_cdr(scenario: Settings) -> None:
    assert scenario.database_url
    with connect(scenario.database_url) as conn:
        found = {
            f.session.session_id: f.json(NOON) for f in missing_cdrs.missing_cdrs(conn, NOON, 24)
        }
        links = conn.execute("SELECT session_key, cdr_key FROM cdr_session ORDER BY 1").fetchall()
    assert found["SES-0014"]["rejected_cdrs"] == ["no_tariff"]
    assert found["SES-0009"]["rejected_cdrs"] == []
    assert (found["SES-0010"]["agreement"], found["SES-0010"]["limit_h"]) == ("TNM-EVB v1", 2)
    assert found["SES-0010"]["due_at"] == "2026-03-04T02:00:00Z"
    assert found["SES-0010"]["overdue_h"] == "10.0"
    assert (found["SES-0009"]["agreement"], found["SES-0009"]["limit_h"]) == ("TNM-DEFAULT v1", 48)
    assert (
        found["SES-0012"]["limit_h"] == 24 and found["SES-0012"]["since"] == "2026-03-03T00:00:00Z"
    )
    assert [(r["session_key"], r["cdr_key"]) for r in links] == [
        ("NL*TNM*SES-0001", "NL*TNM*CDR-2026-0001"),
        ("NL*TNM*SES-0002", "NL*TNM*CDR-2026-0002"),
        ("NL*TNM*SES-0014", "NL*TNM*CDR-NO-TARIFF"),
    ]


@pytest.fixture
def finance(scenario: Settings) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    assert scenario.database_url
    with connect(scenario.database_url) as conn:
        tokens = {"finance": create_token(conn, None), "EVB": create_token(conn, "BE*EVB")}
        conn.commit()
    with serve(scenario) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, tokens


def test_finance_reads_the_same_list_over_the_api(
    finance: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, tokens = finance
    path = "/finance/v1/sessions/missing-cdrs"
    as_of = {"as_of": "2026-03-04T12:00:00Z"}
    bearer = {"Authorization": f"Bearer {tokens['finance']}"}
    everything = client.get(path, params=as_of, headers=bearer)
    assert everything.status_code == 200 and everything.headers["x-total-count"] == "4"
    assert [f["session_id"] for f in everything.json()] == [
        "SES-0012",
        "SES-0010",
        "SES-0009",
        "SES-0014",
    ]
    page = client.get(path, params={**as_of, "limit": 2}, headers=bearer)
    assert len(page.json()) == 2 and "offset=2" in page.headers["link"]
    evb = {"Authorization": f"Bearer {tokens['EVB']}"}
    own = client.get(path, params=as_of, headers=evb)
    assert [f["session_id"] for f in own.json()] == ["SES-0010"]
    assert client.get(path, params={**as_of, "partner": "NL*TNM"}, headers=evb).status_code == 403
    assert client.get(path).status_code == 401
    assert client.get(path, params={"partner": "nope"}, headers=bearer).status_code == 422
