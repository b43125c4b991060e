"""The batch state machine: OPEN -> CLOSING -> CLOSED, or CLOSING -> FAILED -> OPEN (retry).

PostgreSQL enforces the same transitions (trigger ``settlement_batch_guard``) and refuses any
change to a CLOSED batch. The closer inserts a batch as CLOSING and moves it to CLOSED in the
same database transaction, so no other session ever sees a CLOSING batch: a closer killed in
the middle rolls back and leaves nothing half-closed. OPEN batches are not stored: a key's
open position is its unbatched postings (``settlement.batches.closer``).
"""

from __future__ import annotations

from typing import Final

from schemas.hub.batch import BatchState


class BatchTransitionRefused(Exception):
    """A batch was asked to move between states the lifecycle does not connect.

    A programming error in the closer, or an attempt to reopen a CLOSED batch (never
    allowed: corrections go into a later batch as new postings).
    """


TRANSITIONS: Final = frozenset(
    {
        (BatchState.OPEN, BatchState.CLOSING),  # the closer takes the batch
        (BatchState.CLOSING, BatchState.CLOSED),  # totals, rounding and checksum written
        (BatchState.CLOSING, BatchState.FAILED),  # a post-condition failed
        (BatchState.FAILED, BatchState.OPEN),  # retried
    }
)


def transition(current: BatchState, target: BatchState) -> BatchState:
    """``target`` when the lifecycle allows it, else ``BatchTransitionRefused``."""
    if (current, target) not in TRANSITIONS:
        raise BatchTransitionRefused(f"{current} -> {target}")
    return target
