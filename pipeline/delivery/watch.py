"""Waiting for deliveries to settle (the demo; `bench deliver` later): every booking has its
delivery row and none is still to be pushed."""

from __future__ import annotations

import time
from typing import Final, Protocol

from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress

from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from settlement.store import deliveries
from settlement.store.db import connect

WAIT_S_MAX: Final = 300.0


class Alive(Protocol):
    def check_alive(self) -> None: ...


def wait_for_deliveries(settings: Settings, console: Console, group: Alive) -> dict[str, int]:
    """Until every booking has its delivery and none is PENDING or RETRYING (DEAD ones are
    done too: they wait for `deliveries retry`); the counts per state."""
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("deliveries to eMSPs", total=None)
        deadline = time.monotonic() + WAIT_S_MAX
        while time.monotonic() < deadline:
            with connect(role_url(settings, DbRole.READER)) as conn:
                bookings = deliveries.deliverable_bookings(conn)
                per_state = deliveries.counts(conn)
            open_ = per_state["PENDING"] + per_state["RETRYING"]
            made = sum(per_state.values())
            bar.update(task, total=bookings, completed=made - open_)
            if made == bookings and open_ == 0:
                return per_state
            group.check_alive()
            time.sleep(0.5)
    raise TimeoutError(f"deliveries did not settle within {WAIT_S_MAX:.0f} s: {per_state}")
