"""Every OCPI module shares the per-partner token bucket (pipeline.ocpi.limits): without it a
partner could fill the hub's disk with session, tariff or location pushes, each of which is
kept whole as evidence. The CDR receiver takes its token on the fast lane (pipeline.ocpi.cdrs);
the other modules take theirs with the caller:

    def put_session(..., caller: LimitedCaller, ...)   # 429 + Retry-After beyond the bucket
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from pipeline.ocpi.auth import Caller, ocpi_caller
from pipeline.ocpi.limits import RateLimiter, retry_after


def too_many(limiter: RateLimiter, partner: str) -> str:
    rate = limiter.rate(partner)
    return (
        f"too many requests: {partner} may send {rate.per_s:g} per second "
        f"(bursts of {rate.burst:g}); retry after the Retry-After seconds"
    )


def limited_caller(request: Request, caller: Annotated[Caller, Depends(ocpi_caller)]) -> Caller:
    limiter: RateLimiter = request.app.state.ocpi_rate
    partner = str(caller.partner)
    wait_s = limiter.wait_s(partner)
    if wait_s:
        raise HTTPException(429, too_many(limiter, partner), {"Retry-After": retry_after(wait_s)})
    return caller


LimitedCaller = Annotated[Caller, Depends(limited_caller)]
