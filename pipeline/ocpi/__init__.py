"""The hub's OCPI 2.2.1 interface (served by `roamclear api`, the same FastAPI app as the
finance API): versions and credentials, and the receivers partners push to.

- `envelope`: the OCPI response envelope and status codes;
- `auth`: `Authorization: Token …` (2.2.1 base64, or raw where a partner needs it);
- `request_ids`: `X-Request-ID` and `X-Correlation-ID` on every response;
- `modules`: the modules this hub implements, which version details lists;
- `versions`: `GET /ocpi/versions` and `GET /ocpi/2.2.1`.

docs/ocpi.md says what the hub implements of 2.2.1 and where it chose.
"""
