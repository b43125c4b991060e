"""A receipt for tests that need one in the table (test_table_rules)."""

from __future__ import annotations

from schemas.hub.party import PartyRef
from settlement.store.ocpi_receipts import Receipt


def receipt(partner: PartyRef) -> Receipt:
    return Receipt(
        partner=partner,
        module="tariffs",
        method="DELETE",
        object_path=f"{partner.country_code}/{partner.party_id}/AC-STANDARD",
        request_id="req-table-rules",
        correlation_id="corr-table-rules",
        body=None,
        http_status=200,
        status_code=1000,
        message="Success",
        object_key=f"{partner}*AC-STANDARD",
    )
