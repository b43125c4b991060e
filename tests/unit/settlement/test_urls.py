"""`redacted`: a database URL as shown or stored, without its password, in every form libpq
accepts."""

from __future__ import annotations

import pytest

from settlement.store.urls import redacted


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://clearing:s3cret@db.example:5432/roamclear",
            "postgresql://clearing:***@db.example:5432/roamclear",
        ),
        ("postgresql://u:p%40ss@db/x", "postgresql://u:***@db/x"),
        ("postgresql://u:a@b@db/x", "postgresql://u:***@db/x"),  # an unescaped @ in it
        (
            "postgresql://u@db/x?password=s3cret&sslmode=require",
            "postgresql://u@db/x?password=***&sslmode=require",
        ),
        ("host=db user=u password=s3cret dbname=x", "host=db user=u password=*** dbname=x"),
        ("host=db password = 'it\\'s a s3cret' user=u", "host=db password = *** user=u"),
    ],
)
def test_the_password_is_masked(url: str, shown: str) -> None:
    assert redacted(url) == shown
    assert "s3cret" not in redacted(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:@/roamclear?host=/tmp/pgdata",  # the embedded server's: none
        "postgresql://u@db:5432/x",
        "host=db user=u",
    ],
)
def test_a_url_without_a_password_is_unchanged(url: str) -> None:
    assert redacted(url) == url
