"""The hub as OCPI SENDER against a real uvicorn and PostgreSQL: paginated GETs of CDRs,
tariffs and locations. Every page walk returns every object once, also while CDRs arrive
between pages; each partner sees only what is its own; the stored bytes arrive as stored."""

from __future__ import annotations

import base64
import copy
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from pipeline import reference
from pipeline.config import Settings
from pipeline.ocpi.senders import CDRS_PAGE_MAX, LOCATIONS_PAGE_MAX, TARIFFS_PAGE_MAX
from schemas.base import loads_exact
from schemas.hub.party import PartyRef
from schemas.validation import parse_location, parse_tariff
from settlement.store import ocpi_tokens, reference_store
from settlement.store.db import connect
from tests.integration.clearing.helpers import sample
from tests.integration.settlement.http import serve

pytestmark = pytest.mark.integration
PUBLIC = "https://hub.example.test/roam"
BASE = "/ocpi/2.2.1"
PARTNERS = {
    "TNM": ("NL*TNM", "CPO"),
    "ABC": ("NL*ABC", "CPO"),
    "EMP": ("DE*EMP", "EMSP"),
    "EVB": ("BE*EVB", "EMSP"),
    "BTH": ("FR*BTH", "BOTH"),
}
T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Hub:
    client: httpx.Client
    settings: Settings
    tokens: dict[str, str]

    def get(self, path: str, name: str, **headers: str) -> httpx.Response:
        token = base64.b64encode(self.tokens[name].encode()).decode()
        return self.client.get(path, headers={"Authorization": f"Token {token}", **headers})

    def db(self) -> Any:
        assert self.settings.database_url
        return connect(self.settings.database_url, autocommit=True)


@pytest.fixture
def hub(fresh_settings: Settings) -> Iterator[Hub]:
    settings = replace(fresh_settings, public_url=PUBLIC)
    reference.add_partners(
        settings,
        [(PartyRef.parse(party), role, f"{party} test") for party, role in PARTNERS.values()],
    )
    assert settings.database_url
    with connect(settings.database_url) as conn:
        tokens = {
            name: ocpi_tokens.issue(conn, PartyRef.parse(party), ocpi_tokens.TokenKind.C)
            for name, (party, _) in PARTNERS.items()
        }
        conn.commit()
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield Hub(client, settings, tokens)


# -- CDR deliveries, as the delivery intake would have created them ----------------------


def _document(cdr_id: str, cpo: str, emsp: str, last_updated: datetime) -> bytes:
    """A CDR as delivered: numbers written with the digits the hub booked (2.4000)."""
    country, party = cpo.split("*")
    token_country, token_party = emsp.split("*")
    stamp = last_updated.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'{{"country_code":"{country}","party_id":"{party}","id":"{cdr_id}",'
        f'"cdr_token":{{"country_code":"{token_country}","party_id":"{token_party}",'
        f'"uid":"U1","type":"RFID","contract_id":"C1"}},'
        f'"total_cost":{{"excl_vat":2.4000,"incl_vat":2.9040}},"total_energy":10.50,'
        f'"last_updated":"{stamp}"}}'
    ).encode()


def _deliver(
    hub: Hub, cdr_id: str, cpo: str, emsp: str, last_updated: datetime, state: str = "PULL"
) -> bytes:
    """A booking and its delivery row, committed (as the owner: the test writes directly)."""
    document = _document(cdr_id, cpo, emsp, last_updated)
    transaction_id = uuid.uuid4()
    with hub.db() as conn, conn.transaction():
        conn.execute(
            """INSERT INTO ledger_transaction (transaction_id, cdr_key, kind, content_hash,
                   currency, cpo, emsp, session_start, session_end, energy_kwh,
                   amount_excl_vat, amount_incl_vat, fee, rating)
               VALUES (%s, %s, 'CHARGE', 'test', 'EUR', %s, %s, %s, %s, 10.5, 2.4, 2.904,
                       0, '{}')""",
            (transaction_id, f"{cpo}*{cdr_id}", cpo, emsp, last_updated, last_updated),
        )
        conn.execute(
            """INSERT INTO cdr_delivery (transaction_id, kind, cdr_key, cpo, emsp, document,
                   correlation_id, last_updated, state, delivered_at, request_id)
               VALUES (%(id)s, 'CHARGE', %(key)s, %(cpo)s, %(emsp)s, %(document)s, 'corr-1',
                       %(last_updated)s, %(state)s,
                       CASE WHEN %(state)s = 'DELIVERED' THEN now() END,
                       CASE WHEN %(state)s = 'DELIVERED' THEN 'request-1' END)""",
            {
                "id": transaction_id,
                "key": f"{cpo}*{cdr_id}",
                "cpo": cpo,
                "emsp": emsp,
                "document": document,
                "last_updated": last_updated,
                "state": state,
            },
        )
    return document


def _ids(answer: httpx.Response) -> list[str]:
    return [cdr["id"] for cdr in loads_exact(answer.content)["data"]]


def _path(link: str) -> str:
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert match is not None, link
    assert match[1].startswith(PUBLIC), link
    return match[1].removeprefix(PUBLIC)


def _walk(
    hub: Hub, first: str, name: str, between: Any = None
) -> tuple[list[httpx.Response], list[Any]]:
    """Follow Link from `first` to the last page; `between(n)` runs after page n."""
    pages, objects, path = [], [], first
    while True:
        answer = hub.get(path, name)
        assert answer.status_code == 200, answer.text
        pages.append(answer)
        objects += loads_exact(answer.content)["data"]
        if "link" not in answer.headers:
            return pages, objects
        assert len(pages) < 100, "the walk does not end"
        if between is not None:
            between(len(pages))
        path = _path(answer.headers["link"])


def _deliveries(hub: Hub) -> dict[str, list[str]]:
    """Ten CDRs of NL*TNM for DE*EMP (pushed and pulled), three for BE*EVB in between, two
    of NL*ABC for DE*EMP, and one between FR*BTH (as eMSP) and NL*TNM."""
    seen: dict[str, list[str]] = {"EMP": [], "EVB": [], "TNM": [], "ABC": [], "BTH": []}
    states = ["PULL", "PENDING", "DELIVERED", "RETRYING", "DEAD"]
    for n in range(10):
        cdr_id = f"EMP-{n}"
        _deliver(hub, cdr_id, "NL*TNM", "DE*EMP", T0 + timedelta(hours=n), states[n % 5])
        seen["EMP"].append(cdr_id)
        seen["TNM"].append(cdr_id)
        if n % 3 == 0:
            other = f"EVB-{n}"
            _deliver(hub, other, "NL*TNM", "BE*EVB", T0 + timedelta(hours=n))
            seen["EVB"].append(other)
            seen["TNM"].append(other)
    for n in range(2):
        _deliver(hub, f"ABC-{n}", "NL*ABC", "DE*EMP", T0 + timedelta(days=1, hours=n))
        seen["EMP"].append(f"ABC-{n}")
        seen["ABC"].append(f"ABC-{n}")
    _deliver(hub, "BTH-IN", "NL*TNM", "FR*BTH", T0)
    seen["BTH"].append("BTH-IN")
    seen["TNM"].append("BTH-IN")
    return seen


def test_every_walk_returns_every_cdr_once_oldest_first(hub: Hub) -> None:
    expected = _deliveries(hub)["EMP"]
    for limit in (1, 2, 7):
        pages, cdrs = _walk(hub, f"{BASE}/cdrs?limit={limit}", "EMP")
        assert [c["id"] for c in cdrs] == expected  # once each, in delivery order
        assert len(pages) == -(-len(expected) // limit)
        for number, page in enumerate(pages):
            assert page.headers["x-total-count"] == str(len(expected))
            assert page.headers["x-limit"] == str(CDRS_PAGE_MAX)
            assert len(_ids(page)) == min(limit, len(expected) - number * limit)
            last = number == len(pages) - 1
            assert ("link" in page.headers) is not last
            if not last:
                query = parse_qs(urlsplit(_path(page.headers["link"])).query)
                assert query == {"offset": [str((number + 1) * limit)], "limit": [str(limit)]}
    # without parameters: one page, capped at the maximum, no Link
    whole = hub.get(f"{BASE}/cdrs", "EMP")
    assert _ids(whole) == expected and "link" not in whole.headers
    huge = hub.get(f"{BASE}/cdrs?limit=100000", "EMP")
    assert _ids(huge) == expected and huge.headers["x-limit"] == str(CDRS_PAGE_MAX)
    beyond = hub.get(f"{BASE}/cdrs?offset=50", "EMP")
    assert beyond.status_code == 200 and _ids(beyond) == []
    assert beyond.headers["x-total-count"] == str(len(expected)) and "link" not in beyond.headers


def test_a_walk_while_cdrs_arrive_misses_none_and_repeats_none(hub: Hub) -> None:
    before = _deliveries(hub)["EMP"]
    arrived: list[str] = []
    done: list[int] = []  # the limits walked so far

    def book(page: int) -> None:  # a new CDR (and one for another eMSP) after each of 5 pages
        if page > 5:
            return
        cdr_id = f"NEW-{len(done)}-{page}"
        arrived.append(cdr_id)
        _deliver(hub, cdr_id, "NL*TNM", "DE*EMP", T0 - timedelta(days=page))
        _deliver(hub, f"EVB-{cdr_id}", "NL*TNM", "BE*EVB", T0)

    for limit in (1, 2, 7):
        arrived.clear()
        start = _ids(hub.get(f"{BASE}/cdrs", "EMP"))
        pages, cdrs = _walk(hub, f"{BASE}/cdrs?limit={limit}", "EMP", book)
        ids = [c["id"] for c in cdrs]
        assert len(ids) == len(set(ids))  # nothing twice
        assert ids[: len(start)] == start  # what was there, in order, then what arrived
        assert ids[len(start) :] == arrived  # every arrival is behind the walk: it sees it
        assert set(before) <= set(ids)
        # counts grow as CDRs arrive, and the last page's count is the whole list
        totals = [int(p.headers["x-total-count"]) for p in pages]
        assert totals == sorted(totals) and totals[-1] == len(ids)
        done.append(limit)


def test_each_partner_sees_its_own_cdrs_and_no_other_emsps(hub: Hub) -> None:
    seen = _deliveries(hub)
    for name in ("EMP", "EVB", "TNM", "ABC", "BTH"):
        answer = hub.get(f"{BASE}/cdrs?limit=2", name)
        assert answer.headers["x-total-count"] == str(len(seen[name])), name
        _, cdrs = _walk(hub, f"{BASE}/cdrs?limit=2", name)
        assert sorted(c["id"] for c in cdrs) == sorted(seen[name]), name
    # an eMSP: only CDRs whose token is its own; a CPO: only CDRs it sent
    _, evb = _walk(hub, f"{BASE}/cdrs", "EVB")
    assert {(c["cdr_token"]["country_code"], c["cdr_token"]["party_id"]) for c in evb} == {
        ("BE", "EVB")
    }
    _, abc = _walk(hub, f"{BASE}/cdrs", "ABC")
    assert {(c["country_code"], c["party_id"]) for c in abc} == {("NL", "ABC")}
    # a partner that is both: its CDRs as eMSP and as CPO, each once
    _deliver(hub, "BTH-OUT", "FR*BTH", "DE*EMP", T0)
    _deliver(hub, "BTH-SELF", "FR*BTH", "FR*BTH", T0)
    _, both = _walk(hub, f"{BASE}/cdrs?limit=1", "BTH")
    assert [c["id"] for c in both] == ["BTH-IN", "BTH-OUT", "BTH-SELF"]
    assert "BTH-OUT" in _ids(hub.get(f"{BASE}/cdrs", "EMP"))


def test_date_filters_are_on_last_updated_and_links_carry_them(hub: Hub) -> None:
    _deliveries(hub)  # EMP-n last_updated T0 + n hours, ABC-n T0 + 1 day + n hours
    date_from, date_to = "2026-11-01T02:00:00Z", "2026-11-01T07:00:00Z"
    first = f"{BASE}/cdrs?date_from={date_from}&date_to={date_to}&limit=2"
    pages, cdrs = _walk(hub, first, "EMP")
    # date_from inclusive (EMP-2 at 02:00), date_to exclusive (EMP-7 at 07:00 is out)
    assert [c["id"] for c in cdrs] == ["EMP-2", "EMP-3", "EMP-4", "EMP-5", "EMP-6"]
    assert [p.headers["x-total-count"] for p in pages] == ["5", "5", "5"]
    for page in pages[:-1]:
        query = parse_qs(urlsplit(_path(page.headers["link"])).query)
        assert query["date_from"] == [date_from] and query["date_to"] == [date_to]
    # an offset is that instant (+01:00 one hour ahead of Z)
    for spelled in ("2026-11-02T00:00:00Z", "2026-11-02T01:00:00%2B01:00"):
        answer = hub.get(f"{BASE}/cdrs?date_from={spelled}", "EMP")
        assert _ids(answer) == ["ABC-0", "ABC-1"], spelled
    only_to = hub.get(f"{BASE}/cdrs?date_to=2026-11-01T01:00:00Z", "EMP")
    assert _ids(only_to) == ["EMP-0"] and only_to.headers["x-total-count"] == "1"


def test_the_stored_bytes_arrive_as_they_are(hub: Hub) -> None:
    documents = [
        _deliver(hub, f"EXACT-{n}", "NL*TNM", "DE*EMP", T0 + timedelta(minutes=n)) for n in range(3)
    ]
    answer = hub.get(f"{BASE}/cdrs?limit=2", "EMP")
    assert answer.content.startswith(b'{"data":[' + documents[0] + b"," + documents[1] + b"]")
    assert b'"excl_vat":2.4000' in answer.content and b'"total_energy":10.50' in answer.content
    envelope = loads_exact(answer.content)
    assert envelope["status_code"] == 1000 and envelope["status_message"] == "Success"
    assert str(envelope["data"][0]["total_cost"]["excl_vat"]) == "2.4000"


def test_bad_parameters_are_400_2001_naming_each(hub: Hub) -> None:
    for query, named in (
        ("date_from=yesterday", "date_from"),
        ("date_to=2026-13-01T00:00:00Z", "date_to"),
        ("date_to=2026-11-01T00:00:00", "date_to"),  # a bare local time, as everywhere
        ("date_from=2026-11-01T00:00:00 01:00", "date_from"),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("limit=-5", "limit"),
        ("limit=1&limit=2", "limit"),
    ):
        for module in ("cdrs", "tariffs", "locations"):
            answer = hub.get(f"{BASE}/{module}?{query}", "EMP")
            assert answer.status_code == 400, (module, query, answer.text)
            body = answer.json()
            assert body["status_code"] == 2001 and "data" not in body
            assert body["status_message"].startswith(f"{named}: "), body
    # every problem at once
    answer = hub.get(f"{BASE}/cdrs?date_from=x&offset=-1&limit=0", "EMP")
    message = answer.json()["status_message"]
    assert all(f"{name}:" in message for name in ("date_from", "offset", "limit")), message
    assert (
        "%2B"
        in hub.get(f"{BASE}/cdrs?date_from=2026-11-01T00:00:00 01:00", "EMP").json()[
            "status_message"
        ]
    )


def test_routing_request_ids_auth_and_the_single_cdr_get(hub: Hub) -> None:
    _deliveries(hub)
    answer = hub.get(f"{BASE}/cdrs", "EMP", **{"X-Request-ID": "r-1", "X-Correlation-ID": "c-1"})
    assert answer.status_code == 200
    assert (answer.headers["x-request-id"], answer.headers["x-correlation-id"]) == ("r-1", "c-1")
    assert hub.client.get(f"{BASE}/cdrs").status_code == 401
    assert hub.client.get(f"{BASE}/tariffs").status_code == 401
    # /cdrs/{id} is still the receiver's GET of the caller's own received CDR
    own = hub.get(f"{BASE}/cdrs/EMP-1", "TNM")
    assert own.status_code == 404 and "received from NL*TNM" in own.json()["status_message"]
    token = base64.b64encode(hub.tokens["EMP"].encode()).decode()
    details = hub.client.get(BASE, headers={"Authorization": f"Token {token}"}).json()["data"]
    listed = {(e["identifier"], e["role"]): e["url"] for e in details["endpoints"]}
    for module in ("cdrs", "tariffs", "locations"):
        url = f"{PUBLIC}{BASE}/{module}"
        assert listed[(module, "SENDER")] == url and listed[(module, "RECEIVER")] == url


# -- tariffs and locations ---------------------------------------------------------------


def _owned(sample_name: str, cpo: str, object_id: str, last_updated: datetime) -> dict[str, Any]:
    """A sample tariff or Location as `cpo`'s object `object_id`."""
    document: dict[str, Any] = copy.deepcopy(sample(sample_name))
    country, party = cpo.split("*")
    stamp = last_updated.strftime("%Y-%m-%dT%H:%M:%SZ")
    document.update(country_code=country, party_id=party, id=object_id, last_updated=stamp)
    return document


def _tariff(cpo: str, tariff_id: str, last_updated: datetime) -> dict[str, Any]:
    return _owned("tariff_nl_tnm_ac.json", cpo, tariff_id, last_updated)


def _location(cpo: str, location_id: str, last_updated: datetime) -> dict[str, Any]:
    return _owned("location_nl_tnm_ams.json", cpo, location_id, last_updated)


def _store_tariff(hub: Hub, tariff: dict[str, Any]) -> None:
    with connect(hub.settings.database_url or "") as conn:
        reference_store.store_tariff(conn, parse_tariff(tariff), datetime.now(UTC))
        conn.commit()


def _store_location(hub: Hub, location: dict[str, Any]) -> None:
    with connect(hub.settings.database_url or "") as conn:
        reference_store.store_location(conn, parse_location(location))
        conn.commit()


def _every_walk_lists(
    hub: Hub, module: str, name: str, expected_ids: list[str], limit_max: int
) -> None:
    """Walks of pages of 1, 2 and 7 list exactly `expected_ids`, in order, with the headers
    the spec asks for on every page."""
    for limit in (1, 2, 7):
        pages, objects = _walk(hub, f"{BASE}/{module}?limit={limit}", name)
        assert [o["id"] for o in objects] == expected_ids, limit
        assert {p.headers["x-total-count"] for p in pages} == {str(len(expected_ids))}
        assert {p.headers["x-limit"] for p in pages} == {str(limit_max)}
        assert "link" not in pages[-1].headers and all("link" in p.headers for p in pages[:-1])


def test_tariffs_current_versions_in_creation_order_deleted_ones_left_out(hub: Hub) -> None:
    order = [f"T-{n}" for n in range(9)]  # every third NL*ABC's, the others NL*TNM's
    for n, tariff_id in enumerate(order):
        _store_tariff(hub, _tariff("NL*TNM" if n % 3 else "NL*ABC", tariff_id, T0 + n * HOUR))
    # a newer version keeps its place (and is the one listed); an older one changes nothing
    _store_tariff(hub, {**_tariff("NL*TNM", "T-1", T0 + timedelta(days=5)), "currency": "USD"})
    _store_tariff(hub, _tariff("NL*TNM", "T-2", T0 - timedelta(days=5)))
    with connect(hub.settings.database_url or "") as conn:
        deleted = reference_store.delete_tariff(
            conn, PartyRef.parse("NL*TNM"), "T-4", datetime.now(UTC)
        )
        conn.commit()
    assert deleted is reference_store.TariffDeletion.DELETED
    order.remove("T-4")

    _every_walk_lists(hub, "tariffs", "EMP", order, TARIFFS_PAGE_MAX)
    listed = {t["id"]: t for t in _walk(hub, f"{BASE}/tariffs", "EMP")[1]}
    assert listed["T-1"]["currency"] == "USD" and listed["T-2"]["last_updated"] == (
        "2026-11-01T02:00:00Z"
    )
    assert str(listed["T-0"]["elements"][0]["price_components"][0]["price"]) == "0.50"
    assert b'"price": 0.50' in hub.get(f"{BASE}/tariffs", "EMP").content  # digits as stored

    # dates on the current version's last_updated, carried by Link
    pages, tariffs = _walk(
        hub, f"{BASE}/tariffs?date_from=2026-11-01T03:00:00Z&date_to=2026-11-02T00:00:00Z&limit=2",
        "EMP",
    )  # fmt: skip
    assert [t["id"] for t in tariffs] == ["T-3", "T-5", "T-6", "T-7", "T-8"]
    assert "date_from=2026-11-01T03%3A00%3A00Z" in pages[0].headers["link"]

    # a CPO lists its own; an eMSP and a partner that is both list every CPO's
    _, own = _walk(hub, f"{BASE}/tariffs", "ABC")
    assert [t["id"] for t in own] == ["T-0", "T-3", "T-6"]
    assert [t["id"] for t in _walk(hub, f"{BASE}/tariffs", "BTH")[1]] == order
    # the receiver's single GET still works
    single = hub.get(f"{BASE}/tariffs/NL/TNM/T-1", "TNM")
    assert single.status_code == 200 and single.json()["data"]["currency"] == "USD"


def test_locations_current_documents_paged_and_filtered(hub: Hub) -> None:
    order = [f"LOC-{n}" for n in range(8)]  # odd ones NL*TNM's, even ones NL*ABC's
    for n, location_id in enumerate(order):
        cpo = "NL*TNM" if n % 2 else "NL*ABC"
        _store_location(hub, _location(cpo, location_id, T0 + n * HOUR))
    changed = _location("NL*TNM", "LOC-1", T0 + timedelta(days=3))
    changed["evses"][0]["status"] = "CHARGING"
    _store_location(hub, changed)

    _every_walk_lists(hub, "locations", "EVB", order, LOCATIONS_PAGE_MAX)
    first = _walk(hub, f"{BASE}/locations", "EVB")[1][1]
    assert first["id"] == "LOC-1" and first["evses"][0]["status"] == "CHARGING"
    recent = hub.get(f"{BASE}/locations?date_from=2026-11-02T00:00:00Z", "EVB")
    assert [loc["id"] for loc in loads_exact(recent.content)["data"]] == ["LOC-1"]
    _, own = _walk(hub, f"{BASE}/locations", "TNM")
    assert [loc["id"] for loc in own] == ["LOC-1", "LOC-3", "LOC-5", "LOC-7"]
    single = hub.get(f"{BASE}/locations/NL/TNM/LOC-1/EVSE-0001-1", "TNM")
    assert single.status_code == 200 and single.json()["data"]["status"] == "CHARGING"
