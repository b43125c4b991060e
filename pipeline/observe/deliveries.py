"""The deliverer's counts: every attempt the dispatcher finishes, by what follows from its
answer (`delivered`, `retrying`, `dead`: `settlement.store.deliveries.Answered.next_state`).

`ObservedDispatcher` is the dispatcher of `roamclear deliver`: it counts each answer as the
dispatcher judges it (`_answered`, where the answer and the retry policy meet), a counter
increment in memory, no I/O; the dispatcher's loop itself is untouched.
"""

from __future__ import annotations

from typing import Final

from pipeline.delivery.dispatcher import Dispatcher
from pipeline.observe.metrics import observe_attempts
from settlement.delivery.answer import Verdict
from settlement.store.deliveries import Answered, Claimed

OUTCOMES: Final = ("delivered", "retrying", "dead")  # the counter's label set, bounded


class ObservedDispatcher(Dispatcher):
    def _answered(self, item: Claimed, verdict: Verdict, location: str | None) -> Answered:
        answered = super()._answered(item, verdict, location)
        outcome = answered.next_state.value.lower()
        assert outcome in OUTCOMES, outcome  # an answer never leaves a delivery pending
        observe_attempts({outcome: 1})
        return answered
