"""Disputes over the finance API on a real server: a partner opens, reads and withdraws its
own and cannot see or act on another's (404); finance sees all and decides."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pipeline.api.tokens import create_token
from pipeline.config import Settings
from pipeline.hubkeys import load_seal_keys
from settlement.batches.model import ClosePolicy
from settlement.store.closing import close_once
from settlement.store.db import connect
from tests.integration.settlement.factories import at, book, partner
from tests.integration.settlement.http import serve

pytestmark = pytest.mark.integration


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_partners_see_and_act_on_their_own_disputes_only(settle_db: str, tmp_path: Path) -> None:
    with connect(settle_db) as conn:
        keys = {}
        for cpo, emsp in (("NL*TNM", "DE*EMS"), ("FR*CPO", "BE*EMB")):
            transaction_id = book(conn, cpo, emsp, "10.0000")
            row = conn.execute(
                "SELECT cdr_key FROM ledger_transaction WHERE transaction_id = %s",
                (transaction_id,),
            ).fetchone()
            assert row is not None
            keys[emsp] = row["cdr_key"]
            partner(conn, emsp, "EMSP")
        finance = _auth(create_token(conn, None, "finance"))
        ems = _auth(create_token(conn, "DE*EMS"))
        emb = _auth(create_token(conn, "BE*EMB"))
        conn.commit()
    settings = Settings(None, settle_db, "t", tmp_path, 6.0, 0.5)
    closed = close_once(
        settle_db, at("2025-06-02"), ClosePolicy(), load_seal_keys(settings).current
    )
    (ems_statement,) = [b.batch_id for b in closed.batches if b.partner == "DE*EMS"]
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:

        def opening(key: str, amount: object = "1.50") -> dict[str, object]:
            return {"cdr_key": key, "reason": "AMOUNT_INCORRECT", "claimed_amount": amount}

        opened = client.post("/finance/v1/disputes", json=opening(keys["DE*EMS"]), headers=ems)
        assert opened.status_code == 201, opened.text
        mine = opened.json()
        assert (mine["opened_by"], mine["state"], mine["claimed_amount"]) == (
            "DE*EMS", "open", "1.5000",
        )  # fmt: skip
        # finance opens one for the CPO on the same CDR
        for_cpo = {**opening(keys["DE*EMS"]), "opened_by": "NL*TNM"}
        cpos = client.post("/finance/v1/disputes", json=for_cpo, headers=finance).json()
        assert cpos["opened_by"] == "NL*TNM"
        # the statement marks the line (outside the seal: it still verifies); a partner sees
        # the disputes it opened, finance all
        path = f"/finance/v1/statements/{ems_statement}"
        for headers, expected in ((ems, [mine["id"]]), (finance, [mine["id"], cpos["id"]])):
            statement = client.get(path, headers=headers).json()
            assert statement["verification"]["matches"]
            assert statement["totals"]["disputed_lines"] == 1
            assert [d["dispute_id"] for d in statement["lines"][0]["disputes"]] == expected
        # another partner's CDR; a JSON number; no token
        wrong = client.post("/finance/v1/disputes", json=opening(keys["DE*EMS"]), headers=emb)
        assert wrong.status_code == 422 and "neither the CPO" in wrong.text
        number = client.post("/finance/v1/disputes", json=opening(keys["BE*EMB"], 1.5), headers=emb)
        assert number.status_code == 422 and "claimed_amount" in number.text
        assert client.post("/finance/v1/disputes", json=opening(keys["BE*EMB"])).status_code == 401
        theirs = client.post("/finance/v1/disputes", json=opening(keys["BE*EMB"]), headers=emb)
        assert theirs.status_code == 201

        # isolation: B's dispute is 404 for A, as one that does not exist
        other_id, mine_id = theirs.json()["id"], mine["id"]
        assert [d["id"] for d in client.get("/finance/v1/disputes", headers=ems).json()] == [
            mine_id
        ]
        assert client.get("/finance/v1/disputes?partner=BE*EMB", headers=ems).status_code == 403
        for path in (f"/finance/v1/disputes/{other_id}", "/finance/v1/disputes/999999"):
            assert client.get(path, headers=ems).status_code == 404
        note = {"note": "paid directly"}
        withdraw_other = client.post(
            f"/finance/v1/disputes/{other_id}/withdraw", json=note, headers=ems
        )
        assert withdraw_other.status_code == 404
        everything = client.get("/finance/v1/disputes", headers=finance).json()
        assert {d["id"] for d in everything} == {mine_id, other_id, cpos["id"]}

        # deciding: finance's; withdrawing: the opener's
        decline = f"/finance/v1/disputes/{mine_id}/decline"
        assert client.post(decline, json=note, headers=ems).status_code == 403
        assert client.post(decline, json={"note": " "}, headers=finance).status_code == 422
        declined = client.post(decline, json={"note": "tariff as published"}, headers=finance)
        assert declined.status_code == 200 and declined.json()["state"] == "declined"
        assert [h["actor"] for h in declined.json()["history"]] == ["DE*EMS", "hub"]
        assert declined.json()["history"][1]["recorded_by"] == "api:finance"
        withdrawn = client.post(f"/finance/v1/disputes/{other_id}/withdraw", json=note, headers=emb)
        assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
        again = client.post(f"/finance/v1/disputes/{other_id}/withdraw", json=note, headers=emb)
        assert again.status_code == 422 and "cannot be moved" in again.text
        assert client.get(
            "/finance/v1/disputes?state=withdrawn", headers=finance
        ).json()[0]["id"] == other_id  # fmt: skip
