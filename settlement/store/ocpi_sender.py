"""What the hub sends when a partner GETs a list (OCPI 2.2.1 SENDER interfaces): pages of
CDRs, tariffs and locations, each read as the JSON text stored, for the answer to splice in
without decoding it.

    page = cdrs_page(conn, "DE*EMP", Window(date_from=None, date_to=None, offset=0, limit=2))
    page.total       # every CDR DE*EMP may see that matches the dates (X-Total-Count)
    page.documents   # (b'{"country_code":"NL",...,"total_cost":{"excl_vat":2.4000}}', ...)

Each page and its total come from one statement, so from one snapshot: the count always
describes the rows the page was cut from.

Orders, chosen so that what arrives later is appended at the end and offset paging never
skips nor repeats a row a client already paged past:
- CDRs: `delivery_id`, which grows in commit order (migration 0016);
- tariffs and locations: when the object was first stored (a tariff's first version's
  `published_at`, a location's first revision), then its key. An update keeps the object's
  place; only a deleted tariff leaves the list (the count drops: see docs/ocpi.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg

from settlement.store.db import Row


@dataclass(frozen=True, slots=True)
class Window:
    """Which slice of a list: `last_updated` in [date_from, date_to) (None: unbounded), then
    `limit` objects from position `offset` (0-based)."""

    date_from: datetime | None
    date_to: datetime | None
    offset: int
    limit: int

    def __post_init__(self) -> None:
        assert self.offset >= 0 and self.limit >= 1


@dataclass(frozen=True, slots=True)
class Page:
    total: int  # objects matching the dates, visible to the caller, ignoring offset/limit
    documents: tuple[bytes, ...]  # the page's objects as stored JSON, in list order

    def __post_init__(self) -> None:
        assert len(self.documents) <= self.total


def _dates(window: Window, alias: str = "") -> str:
    """The date conditions the window has (`AND …`, or nothing): written out only when
    given, so that each plan is made for the filters it has."""
    conditions = ""
    if window.date_from is not None:
        conditions += f" AND {alias}last_updated >= %(date_from)s"
    if window.date_to is not None:
        conditions += f" AND {alias}last_updated < %(date_to)s"
    return conditions


# A CDR is visible to both parties it names: its eMSP (every state: pushed or pulled, it is
# the eMSP's CDR either way) and its CPO; a CDR of a partner with itself, once. The ids
# come from the (emsp, delivery_id) and (cpo, delivery_id) indexes (without dates, an
# eMSP's from its index alone), the documents only for the page's ids: counting never
# reads a document.
_CDRS: Final = """
WITH visible AS (
    SELECT delivery_id FROM cdr_delivery WHERE emsp = %(party)s {dates}
    UNION ALL
    SELECT delivery_id FROM cdr_delivery WHERE cpo = %(party)s AND emsp <> %(party)s {dates}
)
SELECT (SELECT count(*) FROM visible) AS total,
       ARRAY(SELECT d.document FROM cdr_delivery d
              WHERE d.delivery_id IN (SELECT delivery_id FROM visible ORDER BY delivery_id
                                       OFFSET %(offset)s LIMIT %(limit)s)
              ORDER BY d.delivery_id) AS documents
"""

# The newest version of each tariff (as the receiver's GET picks it), unless its latest
# lifecycle event deleted it.
_TARIFFS: Final = """
WITH current AS (
    SELECT DISTINCT ON (tariff_key) tariff_key, last_updated, body
      FROM tariff_version
     WHERE %(cpo)s::text IS NULL OR cpo = %(cpo)s
     ORDER BY tariff_key, last_updated DESC, published_at DESC
), listed AS (
    SELECT c.tariff_key, c.body, f.first_at
      FROM current c
      JOIN (SELECT tariff_key, min(published_at) AS first_at FROM tariff_version
             WHERE %(cpo)s::text IS NULL OR cpo = %(cpo)s
             GROUP BY tariff_key) f USING (tariff_key)
     WHERE NOT coalesce((SELECT l.event = 'DELETED' FROM tariff_lifecycle l
                          WHERE l.tariff_key = c.tariff_key
                          ORDER BY l.at DESC LIMIT 1), false) {dates}
)
SELECT (SELECT count(*) FROM listed) AS total,
       ARRAY(SELECT convert_to(body::text, 'UTF8') FROM listed ORDER BY first_at, tariff_key
              OFFSET %(offset)s LIMIT %(limit)s) AS documents
"""

# The highest revision of each location is its current document (migration 0014).
_LOCATIONS: Final = """
WITH revisions AS (
    SELECT location_key, min(revision) AS first_revision, max(revision) AS current_revision
      FROM location_version
     WHERE %(cpo)s::text IS NULL OR cpo = %(cpo)s
     GROUP BY location_key
), listed AS (
    SELECT r.first_revision, v.body
      FROM revisions r
      JOIN location_version v
        ON v.location_key = r.location_key AND v.revision = r.current_revision
     WHERE true {dates}
)
SELECT (SELECT count(*) FROM listed) AS total,
       ARRAY(SELECT convert_to(body::text, 'UTF8') FROM listed ORDER BY first_revision
              OFFSET %(offset)s LIMIT %(limit)s) AS documents
"""


def _page(
    conn: psycopg.Connection[Row], query: str, window: Window, alias: str, **filters: str | None
) -> Page:
    parameters: dict[str, Any] = {
        "date_from": window.date_from,
        "date_to": window.date_to,
        "offset": window.offset,
        "limit": window.limit,
        **filters,
    }
    row = conn.execute(query.format(dates=_dates(window, alias)), parameters).fetchone()
    assert row is not None  # an aggregate always answers one row
    return Page(row["total"], tuple(bytes(document) for document in row["documents"]))


def cdrs_page(conn: psycopg.Connection[Row], party: str, window: Window) -> Page:
    """The CDRs `party` is the eMSP or the CPO of, as delivered (the stored documents),
    oldest delivery first."""
    return _page(conn, _CDRS, window, "", party=party)


def tariffs_page(conn: psycopg.Connection[Row], cpo: str | None, window: Window) -> Page:
    """The current tariffs of `cpo` (None: of every CPO), not deleted, as stored."""
    return _page(conn, _TARIFFS, window, "c.", cpo=cpo)


def locations_page(conn: psycopg.Connection[Row], cpo: str | None, window: Window) -> Page:
    """The current Locations of `cpo` (None: of every CPO), as stored."""
    return _page(conn, _LOCATIONS, window, "v.", cpo=cpo)
