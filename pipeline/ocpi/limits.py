"""Requests per partner per second: a token bucket per partner, in each API process.

A partner's bucket holds up to `burst` requests and refills at `per_s`; a request that finds
it empty is answered 429 with `Retry-After` (whole seconds until a token is back). The
default, `REQUESTS_PER_S_DEFAULT` = 100/s with a burst of 200, is 17 times what the biggest
hub pushes per partner (350 CDRs a minute, about 6/s), and keeps one partner from taking more
than a small share of what one API process serves (about 1,500 CDRs/s on two cores).

Per partner, from the environment (`ROAMCLEAR_OCPI_RATE_LIMITS`):

    ROAMCLEAR_OCPI_RATE_LIMITS="NL*TNM=20,DE*BIG=400/1000"   # per_s[/burst]

    >>> limiter = RateLimiter(Rate(2, 2), {})
    >>> [limiter.wait_s("NL*TNM", now=0.0) for _ in range(3)]
    [0.0, 0.0, 0.5]

Each API process has its own buckets: with N processes behind a balancer a partner gets up
to N times its rate (a shared bucket would cost a round trip per request).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

REQUESTS_PER_S_DEFAULT: Final = 100.0
BURST_DEFAULT: Final = 200.0
PARTNERS_TRACKED_MAX: Final = 100_000  # buckets kept; beyond, the idlest (full) ones go


@dataclass(frozen=True, slots=True)
class Rate:
    per_s: float
    burst: float

    def __post_init__(self) -> None:
        assert self.per_s > 0 and self.burst >= 1, self


class RateLimitInvalid(ValueError):
    """`ROAMCLEAR_OCPI_RATE_LIMITS` does not parse: fix the variable (PARTY=per_s[/burst],
    comma-separated) and restart the API."""


def parse_rates(text: str) -> dict[str, Rate]:
    """`"NL*TNM=20,DE*BIG=400/1000"` -> {"NL*TNM": Rate(20, 40), "DE*BIG": Rate(400, 1000)};
    without a burst, two seconds' worth."""
    rates: dict[str, Rate] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        party, _, figures = item.partition("=")
        per_s_text, _, burst_text = figures.partition("/")
        try:
            per_s = float(per_s_text)
            burst = float(burst_text) if burst_text else max(1.0, 2 * per_s)
            rates[party.strip().upper()] = Rate(per_s, burst)
        except (ValueError, AssertionError):
            raise RateLimitInvalid(
                f"ROAMCLEAR_OCPI_RATE_LIMITS: {item!r} is not PARTY=per_s[/burst] with "
                "per_s > 0 and burst >= 1"
            ) from None
    return rates


class RateLimiter:
    def __init__(self, default: Rate, per_partner: Mapping[str, Rate]) -> None:
        self._default = default
        self._rates = dict(per_partner)
        self._buckets: dict[str, tuple[float, float]] = {}  # partner -> (tokens, at)

    def rate(self, partner: str) -> Rate:
        return self._rates.get(partner, self._default)

    def wait_s(self, partner: str, now: float | None = None) -> float:
        """Take one token for `partner`: 0.0 when granted, else how long until one is back
        (nothing is taken then)."""
        at = time.monotonic() if now is None else now
        rate = self.rate(partner)
        tokens, since = self._buckets.get(partner, (rate.burst, at))
        tokens = min(rate.burst, tokens + (at - since) * rate.per_s)
        if tokens < 1:
            self._buckets[partner] = (tokens, at)
            return (1 - tokens) / rate.per_s
        if len(self._buckets) >= PARTNERS_TRACKED_MAX and partner not in self._buckets:
            self._forget_full(at)
        self._buckets[partner] = (tokens - 1, at)
        return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: forgetting them changes nothing."""
        for partner, (tokens, since) in list(self._buckets.items()):
            rate = self.rate(partner)
            if tokens + (now - since) * rate.per_s >= rate.burst:
                del self._buckets[partner]


def retry_after(wait_s: float) -> str:
    """The `Retry-After` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
