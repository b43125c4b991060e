"""Paginated GETs of lists (OCPI 2.2.1 transport_and_format, "Pagination"): the one reading
of the parameters and the one writing of the answer, for every SENDER interface.

    GET /ocpi/2.2.1/cdrs?date_from=2026-12-01T00:00:00Z&offset=0&limit=2
    -> 200, {"data": [<CDR>, <CDR>], "status_code": 1000, ...}
       X-Total-Count: 5           every object the filters match that the caller may see
       X-Limit: 100               the server's maximum page, whatever limit was asked
       Link: <https://hub.example/ocpi/2.2.1/cdrs?date_from=2026-12-01T00%3A00%3A00Z
              &offset=2&limit=2>; rel="next"      only while more pages follow

Parameters: `date_from` (inclusive) and `date_to` (exclusive) on `last_updated`, RFC 3339
with an offset (`Z`; a bare local time is refused, as everywhere in the hub: docs/ocpi.md,
"Where the hub departs from the spec"); `offset` from 0 (the default); `limit` from 1,
capped at the module's maximum (the default). Anything else about
them is HTTP 400 with 2001 and every problem, each naming its parameter. The objects are
spliced into the answer as the stored JSON bytes: numbers keep their digits (`2.4000`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final
from urllib.parse import urlencode

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from pipeline.ocpi.envelope import OcpiError, OcpiStatus, ocpi_body
from schemas.ocpi.types import DateTime, format_datetime
from schemas.wire import encode_json_bytes
from settlement.store.ocpi_sender import Page, Window

OFFSET_DIGITS_MAX: Final = 15  # far beyond any list, well inside PostgreSQL's bigint
PARAMETER_CHARS_MAX: Final = 64  # a date-time is at most 35 characters; quoted back at most this
_INTEGER: Final = re.compile(rf"[0-9]{{1,{OFFSET_DIGITS_MAX}}}")
_DATE_TIME: Final = TypeAdapter(DateTime)


def _single(request: Request, name: str, problems: list[str]) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        problems.append(f"{name}: given {len(values)} times; give it once")
        return None
    return values[0] if values else None


def _quoted(value: str) -> str:
    return repr(value[:PARAMETER_CHARS_MAX])


def _date(request: Request, name: str, problems: list[str]) -> datetime | None:
    value = _single(request, name, problems)
    if value is None:
        return None
    try:
        return _DATE_TIME.validate_python(value)
    except ValidationError:
        # a `+` not sent as %2B arrives as a space
        hint = " (send a '+' offset as %2B)" if " " in value else ""
        problems.append(
            f"{name}: must be an RFC 3339 date-time with its offset, e.g. "
            f"2026-12-03T10:00:00Z, not {_quoted(value)}{hint}"
        )
        return None


def _integer(request: Request, name: str, minimum: int, problems: list[str]) -> int | None:
    value = _single(request, name, problems)
    if value is None:
        return None
    if _INTEGER.fullmatch(value) is None or int(value) < minimum:
        problems.append(
            f"{name}: must be a whole number from {minimum} "
            f"(at most {OFFSET_DIGITS_MAX} digits), not {_quoted(value)}"
        )
        return None
    return int(value)


def window(request: Request, limit_max: int) -> Window:
    """The slice a GET asks for, or OcpiError 400/2001 naming every bad parameter."""
    problems: list[str] = []
    date_from = _date(request, "date_from", problems)
    date_to = _date(request, "date_to", problems)
    offset = _integer(request, "offset", 0, problems)
    limit = _integer(request, "limit", 1, problems)
    if problems:
        raise OcpiError(400, OcpiStatus.INVALID_PARAMETERS, "; ".join(problems))
    return Window(
        date_from=date_from,
        date_to=date_to,
        offset=offset or 0,
        limit=min(limit or limit_max, limit_max),
    )


def _next_link(public_url: str, path: str, asked: Window, returned: int) -> str:
    """The Link header to the page after this one, with the same filters and limit."""
    parameters: dict[str, str | int] = {}
    if asked.date_from is not None:
        parameters["date_from"] = format_datetime(asked.date_from)
    if asked.date_to is not None:
        parameters["date_to"] = format_datetime(asked.date_to)
    parameters["offset"] = asked.offset + returned
    parameters["limit"] = asked.limit
    return f'<{public_url.rstrip("/")}{path}?{urlencode(parameters)}>; rel="next"'


def page_response(
    request: Request, path: str, asked: Window, page: Page, limit_max: int
) -> Response:
    """200/1000 with the page's objects as `data`, X-Total-Count, X-Limit, and Link when more
    objects follow (`path`: the module's, as partners reach it under the public URL)."""
    data = [orjson.Fragment(document) for document in page.documents]
    body = encode_json_bytes(ocpi_body(data, OcpiStatus.SUCCESS, "Success"))
    headers = {"X-Total-Count": str(page.total), "X-Limit": str(limit_max)}
    returned = len(page.documents)
    if returned and asked.offset + returned < page.total:
        headers["Link"] = _next_link(request.app.state.public_url, path, asked, returned)
    return Response(body, 200, headers, media_type="application/json")
