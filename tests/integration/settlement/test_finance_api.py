"""The finance API: a finance token sees every statement, a partner token only its own."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pypdf
import pytest

from pipeline.api.tokens import (
    TOKEN_ID_CHARS,
    TokenRefused,
    TokenStatus,
    create_token,
    list_tokens,
    revoke_token,
    token_hash,
)
from pipeline.config import Settings
from pipeline.hubkeys import load_seal_keys
from settlement.batches.model import ClosePolicy
from settlement.store.closing import close_once
from settlement.store.db import connect
from settlement.store.statements import (
    LIST_PAGE_DEFAULT,
    LIST_PAGE_MAX,
    iter_statements,
    list_statements,
)
from settlement.store.urls import database_name
from tests.integration.settlement.factories import at, book, partner
from tests.integration.settlement.http import serve

pytestmark = pytest.mark.integration


@pytest.fixture
def api(settle_db: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    with connect(settle_db) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0000")
        book(conn, "FR*CPO", "BE*EMB", "5.0000")
        partner(conn, "NL*TNM", "CPO")
        tokens = {
            "finance": create_token(conn, None, "test"),
            "tnm": create_token(conn, "NL*TNM"),
        }
        conn.commit()
    settings = Settings(None, settle_db, "t", tmp_path, 6.0, 0.5)
    close_once(settle_db, at("2025-06-02 00:00"), ClosePolicy(), load_seal_keys(settings).current)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, tokens


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_finance_sees_all_and_a_partner_only_its_own(
    api: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, tokens = api
    everything = client.get("/finance/v1/statements", headers=_auth(tokens["finance"]))
    assert everything.status_code == 200
    partners = {s["partner"] for s in everything.json()}
    assert partners == {"NL*TNM", "DE*EMS", "FR*CPO", "BE*EMB"}
    own = client.get("/finance/v1/statements", headers=_auth(tokens["tnm"])).json()
    assert [s["partner"] for s in own] == ["NL*TNM"]
    assert own[0]["net_amount"] == "9.8500"
    other = next(s["id"] for s in everything.json() if s["partner"] == "FR*CPO")
    for suffix in ("", ".csv", ".pdf"):
        assert (
            client.get(
                f"/finance/v1/statements/{other}{suffix}", headers=_auth(tokens["finance"])
            ).status_code
            == 200
        )
    assert (
        client.get(
            "/finance/v1/statements?partner=FR*CPO", headers=_auth(tokens["tnm"])
        ).status_code
        == 403
    )
    mine = own[0]["id"]
    body = client.get(f"/finance/v1/statements/{mine}", headers=_auth(tokens["tnm"])).json()
    assert body["totals"]["net_amount"] == "9.8500" and len(body["lines"]) == 1
    csv_text = client.get(f"/finance/v1/statements/{mine}.csv", headers=_auth(tokens["tnm"])).text
    assert "total,net_amount,9.8500" in csv_text
    pdf = client.get(f"/finance/v1/statements/{mine}.pdf", headers=_auth(tokens["tnm"]))
    assert pdf.headers["content-type"] == "application/pdf"
    assert "9.85" in pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()


def test_no_or_a_wrong_token_is_401(api: tuple[httpx.Client, dict[str, str]]) -> None:
    client, _ = api
    assert client.get("/finance/v1/statements").status_code == 401
    assert client.get("/finance/v1/statements", headers=_auth("nope")).status_code == 401
    assert client.get("/finance/v1/statements/1").status_code == 401
    assert client.get("/docs").status_code == 200
    assert "/finance/v1/statements" in client.get("/openapi.json").json()["paths"]


def _tamper(url: str, *statements: str) -> None:
    """As a superuser with the triggers off: what the seal is there for."""
    with connect(url) as conn:
        conn.execute("SET session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)
        conn.commit()


def test_a_tampered_statement_shows_its_stored_figures_and_says_so(
    api: tuple[httpx.Client, dict[str, str]], settle_db: str
) -> None:
    client, tokens = api
    finance = _auth(tokens["finance"])
    listed = {s["partner"]: s for s in client.get("/finance/v1/statements", headers=finance).json()}
    assert {s["seal_status"] for s in listed.values()} == {"VALID"}
    tnm, cpo = listed["NL*TNM"]["id"], listed["FR*CPO"]["id"]
    verified = client.get(f"/finance/v1/statements/{tnm}", headers=finance)
    assert verified.json()["verification"]["matches"] is True
    assert verified.headers["X-Statement-Verified"] == "true"
    _tamper(
        settle_db,
        "UPDATE ledger_posting SET amount = amount + 1 WHERE account = 'partner:NL*TNM'",
        f"UPDATE settlement_batch SET late_net = late_net + 1 WHERE batch_id = {cpo}",
    )
    detail = client.get(f"/finance/v1/statements/{tnm}", headers=finance)
    body = detail.json()
    assert detail.status_code == 200 and detail.headers["X-Statement-Verified"] == "false"
    assert body["verification"]["matches"] is False
    assert any(d.startswith("credit") for d in body["verification"]["differences"])
    # the stored figures, as closed: the list and the detail agree
    assert body["net_amount"] == body["totals"]["net_amount"] == "9.8500"
    again = client.get("/finance/v1/statements", headers=finance)
    rows = {s["partner"]: s for s in again.json()}
    assert rows["NL*TNM"]["net_amount"] == "9.8500"
    assert rows["FR*CPO"]["seal_status"] == "INVALID"
    assert again.headers["X-Statements-Unverified"] == "1"
    for suffix in (".csv", ".pdf"):
        document = client.get(f"/finance/v1/statements/{tnm}{suffix}", headers=finance)
        assert document.status_code == 409
        assert document.json()["detail"]["differences"]


def test_another_partners_statement_is_as_missing_as_one_that_does_not_exist(
    api: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, tokens = api
    listed = client.get("/finance/v1/statements", headers=_auth(tokens["finance"])).json()
    other = next(s["id"] for s in listed if s["partner"] == "FR*CPO")
    missing = max(s["id"] for s in listed) + 1000
    for suffix in ("", ".csv", ".pdf"):
        answers = [
            client.get(f"/finance/v1/statements/{n}{suffix}", headers=_auth(tokens["tnm"]))
            for n in (other, missing)
        ]
        assert [a.status_code for a in answers] == [404, 404]
        bodies = [
            a.json()["detail"].replace(str(n), "N")
            for a, n in zip(answers, (other, missing), strict=True)
        ]
        assert bodies[0] == bodies[1]


def test_from_and_to_without_an_offset_are_utc_whatever_the_session_zone(
    settle_db: str, tmp_path: Path
) -> None:
    with connect(settle_db) as conn:
        book(conn, "NL*TNM", "DE*EMS", "10.0000")  # May 2025, UTC periods
        token = create_token(conn, None, "test")
        conn.commit()
    settings = Settings(None, settle_db, "t", tmp_path, 6.0, 0.5)
    keys = load_seal_keys(settings)
    close_once(settle_db, at("2025-06-02 00:00"), ClosePolicy(), keys.current)
    with connect(settle_db, autocommit=True) as conn:
        # every new session of this database runs 14 hours ahead of UTC
        conn.execute(f"ALTER DATABASE \"{database_name(settle_db)}\" SET TimeZone = 'Etc/GMT-14'")
    cases = {
        # bound: partners listed; May is [2025-05-01T00:00Z, 2025-06-01T00:00Z)
        "to=2025-05-01T06:00:00": {"NL*TNM", "DE*EMS"},  # UTC: after May began
        "from=2025-06-01": set(),  # UTC midnight: May has ended
        "to=2025-05-01T06:00:00%2B14:00": set(),  # an offset is kept: 30 April, 16:00 UTC
        "from=2025-05-31T23:00:00Z": {"NL*TNM", "DE*EMS"},
    }
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        for query, partners in cases.items():
            found = client.get(f"/finance/v1/statements?{query}", headers=_auth(token))
            assert {s["partner"] for s in found.json()} == partners, query
    with connect(settle_db) as conn:  # the CLI's path: naive datetimes, as typer parses them
        assert conn.execute("SHOW TimeZone").fetchone() == {"TimeZone": "Etc/GMT-14"}
        listed = list_statements(conn, keys, period_to=datetime(2025, 5, 1, 6)).items  # noqa: DTZ001
        assert {s.partner for s in listed} == {"NL*TNM", "DE*EMS"}
        assert list_statements(conn, keys, period_from=datetime(2025, 6, 1)).total == 0  # noqa: DTZ001


def test_revoked_expired_and_unregistered_tokens(
    api: tuple[httpx.Client, dict[str, str]], settle_db: str
) -> None:
    client, tokens = api
    with connect(settle_db) as conn:
        with pytest.raises(TokenRefused, match="not a registered partner"):
            create_token(conn, "FR*CPO")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):  # the database refuses too
            conn.execute(
                "INSERT INTO finance_api_token (token_hash, scope, partner)"
                " VALUES (repeat('a', 64), 'PARTNER', 'FR*CPO')"
            )
    with connect(settle_db) as conn:
        with pytest.raises(TokenRefused, match="not in the future"):
            create_token(conn, None, expires_at=datetime(2020, 1, 1, tzinfo=UTC))
        later = create_token(conn, None, "expires later", datetime(2999, 1, 1, tzinfo=UTC))
        # a token that expired yesterday (made as if two days ago: created_at is ours to set)
        expired = "expired-token-for-the-test"
        conn.execute(
            "INSERT INTO finance_api_token (token_hash, scope, created_at, expires_at)"
            " VALUES (%s, 'FINANCE', now() - interval '2 days', now() - interval '1 day')",
            (token_hash(expired),),
        )
        conn.commit()
    statements = "/finance/v1/statements"
    assert client.get(statements, headers=_auth(later)).status_code == 200
    assert client.get(statements, headers=_auth(expired)).status_code == 401
    assert client.get(statements, headers=_auth(tokens["tnm"])).status_code == 200
    with connect(settle_db) as conn:
        revoked = revoke_token(conn, token_hash(tokens["tnm"])[:TOKEN_ID_CHARS], "left the hub")
        conn.commit()
        listed = {t.token_id: t for t in list_tokens(conn)}
        with pytest.raises(TokenRefused, match="already revoked"):
            revoke_token(conn, revoked.token_id)
        with pytest.raises(psycopg.errors.IntegrityError):  # a revocation is final
            conn.execute("DELETE FROM finance_api_token_revocation")
    assert revoked.status is TokenStatus.REVOKED and revoked.partner == "NL*TNM"
    assert client.get(statements, headers=_auth(tokens["tnm"])).status_code == 401
    assert listed[token_hash(expired)[:TOKEN_ID_CHARS]].status is TokenStatus.EXPIRED
    assert listed[token_hash(later)[:TOKEN_ID_CHARS]].status is TokenStatus.ACTIVE
    assert client.get(statements, headers=_auth(tokens["finance"])).status_code == 200


def test_422_bodies_are_bounded_and_plain(api: tuple[httpx.Client, dict[str, str]]) -> None:
    client, tokens = api
    finance = _auth(tokens["finance"])
    long = "2025-05-01T" + "9" * 4000
    cases = {
        f"/finance/v1/statements?from={long}&to={long}": ["query.from", "query.to"],
        f"/finance/v1/statements?partner={'NL*' + 'X' * 4000}": ["query.partner"],
        "/finance/v1/statements/not-a-number": ["path.statement_id"],
    }
    for url, fields in cases.items():
        answer = client.get(url, headers=finance)
        assert answer.status_code == 422, url
        assert len(answer.content) < 1000, answer.text
        assert "pydantic" not in answer.text and "X" * 100 not in answer.text
        detail = answer.json()["detail"]
        assert [problem["field"] for problem in detail] == fields
        assert all(set(problem) <= {"field", "message", "input"} for problem in detail)
        assert all(len(problem.get("input", "")) <= 40 for problem in detail)


def test_the_list_pages_through_every_statement(settle_db: str, tmp_path: Path) -> None:
    with connect(settle_db) as conn:
        for day in range(60):  # 120 daily batches: NL*TNM's and DE*EMS's
            end = at("2025-05-01 12:00") + timedelta(days=day)
            book(conn, "NL*TNM", "DE*EMS", "10.0000", end=end, kind="DAILY")
        partner(conn, "NL*TNM")
        token, tnm = create_token(conn, None), create_token(conn, "NL*TNM")
        conn.commit()
    settings = Settings(None, settle_db, "t", tmp_path, 6.0, 0.5)
    keys = load_seal_keys(settings)
    close_once(settle_db, at("2025-07-02 00:00"), ClosePolicy(), keys.current)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        first = client.get("/finance/v1/statements", headers=_auth(token))
        assert len(first.json()) == LIST_PAGE_DEFAULT < 120
        assert (first.headers["X-Total-Count"], first.headers["X-Limit"]) == ("120", "100")
        seen, link, pages = [], "/finance/v1/statements?limit=50", 0
        while link:
            page = client.get(link, headers=_auth(token))
            seen += [s["id"] for s in page.json()]
            pages += 1
            link = page.headers.get("Link", "").removeprefix("<").partition(">")[0]
        assert pages == 3 and len(seen) == len(set(seen)) == 120 and seen == sorted(seen)
        assert (
            client.get("/finance/v1/statements", headers=_auth(tnm)).headers["X-Total-Count"]
            == "60"
        )
        for bad in ("limit=0", f"limit={LIST_PAGE_MAX + 1}", "offset=-1"):
            assert (
                client.get(f"/finance/v1/statements?{bad}", headers=_auth(token)).status_code == 422
            )
    with connect(settle_db) as conn:
        every = [s.batch_id for s in iter_statements(conn, keys, page=7)]
    assert every == seen
