"""The embedded default: a Tansu broker and a pgserver PostgreSQL, started on demand.

Used when `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` are unset, by `roamclear dev`, the demo
and the test fixtures. Both bind to loopback only (Tansu on 127.0.0.1, PostgreSQL on a unix
socket inside its data directory).
"""


class EmbeddedError(RuntimeError):
    """The embedded stack could not do what was asked; the message says why and what to do
    (commands print it without a traceback)."""
