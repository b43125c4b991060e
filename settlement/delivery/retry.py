"""When a failed delivery is tried again: capped exponential backoff with jitter.

Attempt n (1, 2, …) that fails waits `base × factor^(n-1)`, at most `cap`, then a random
share of it between half and all ("equal jitter"): eMSPs that went down together are not
all called again in the same second when they come back. After `attempts_max` failed
attempts the delivery is dead; `roamclear deliveries retry` queues it again.

    >>> policy = RetryPolicy(base_s=1.0, factor=2.0, cap_s=60.0, attempts_max=5)
    >>> [policy.delay_s(n, jitter=1.0) for n in (1, 2, 3, 7, 30)]
    [1.0, 2.0, 4.0, 60.0, 60.0]
    >>> policy.delay_s(3, jitter=0.0)
    2.0
    >>> policy.gives_up_after(5), policy.gives_up_after(4)
    (True, False)
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float
    factor: float
    cap_s: float
    attempts_max: int

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.factor < 1 or self.cap_s < self.base_s:
            raise ValueError(f"a retry policy needs 0 < base <= cap and factor >= 1: {self}")
        if self.attempts_max < 1:
            raise ValueError(f"a retry policy needs at least one attempt: {self}")

    def delay_s(self, failed_attempts: int, jitter: float | None = None) -> float:
        """Seconds to wait after the `failed_attempts`-th failure; `jitter` in [0, 1] (drawn
        when None) picks the share between half and all of the backoff."""
        exponent = min(max(failed_attempts - 1, 0), 64)  # 2**64 s is past any cap
        backoff = min(self.cap_s, self.base_s * self.factor**exponent)
        share = random.random() if jitter is None else jitter  # not a secret: jitter
        return backoff / 2 + backoff / 2 * share

    def gives_up_after(self, failed_attempts: int) -> bool:
        return failed_attempts >= self.attempts_max
