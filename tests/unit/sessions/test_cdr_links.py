"""Which decided CDRs are linked to a session: decoded, proven, with a session_id, and the
submitter's own (a forged or foreign CDR must not make a session look served)."""

from __future__ import annotations

from schemas.hub.party import PartyRef
from settlement.clearing.decode import Decoded, decode
from settlement.store.cdr_sessions import link_rows
from tests.integration.clearing.helpers import cdr_dict, envelope


def _decoded(**changes: object) -> Decoded:
    item = decode(envelope(cdr_dict(0, **changes)))
    assert isinstance(item, Decoded)
    return item


def test_only_proven_own_cdrs_with_a_session_are_linked() -> None:
    own = _decoded(session_id="ses-7", id="cdr-7")
    foreign = Decoded(own.event_id, PartyRef.parse("NL*ABC"), own.cdr)
    unlinked = _decoded(session_id=None)
    rejected = decode(b"{")
    rows = link_rows(
        [(1, own, "hub-0123456789ab"), (2, own, None), (3, foreign, "pk-0123456789ab"),
         (4, unlinked, "hub-0123456789ab"), (5, rejected, "hub-0123456789ab")]
    )  # fmt: skip
    assert rows == [(1, "NL*TNM*SES-7", "NL*TNM*CDR-7")]
