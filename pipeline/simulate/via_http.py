"""A whole scenario over OCPI HTTP (`simulate --via http`, the demo): the operator registers
the partners and their agreements, each simulated partner connects through the credentials
handshake from a platform of its own, CPOs PUT their tariffs and locations, then the stream
goes out as sessions and CDRs (pipeline.simulate.over_http).

    with hub_api(settings, None, log_dir) as hub_url:
        run = send_over_http(settings, hub_url, data, iter_submissions(config, data))
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline import reference
from pipeline.api.process import api_process
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.simulate.generator import Submission
from pipeline.simulate.over_http import (
    HttpTally,
    connect,
    drive,
    push_reference,
    simulated_partners,
)
from pipeline.simulate.platform import PartnerPlatforms
from pipeline.simulate.reference import ReferenceData
from settlement.store import ocpi_connections
from settlement.store.db import connect as connect_db


class AlreadyConnected(RuntimeError):
    """Simulated partners that a previous run connected: their tokens are gone with it."""


@dataclass(frozen=True, slots=True)
class HttpRun:
    partners: int  # connected through the handshake
    reference_pushed: int  # tariffs and locations PUT
    tally: HttpTally


@contextmanager
def hub_api(settings: Settings, hub_url: str | None, log_dir: Path) -> Iterator[str]:
    """The hub's API: the one at `hub_url`, or a `roamclear api` process started for the run."""
    if hub_url:
        yield hub_url.rstrip("/")
        return
    with api_process(settings, log_dir) as api:
        yield api.url


def check_not_connected(settings: Settings, data: ReferenceData) -> None:
    with connect_db(role_url(settings, DbRole.READER)) as conn:
        live = {str(c.partner) for c in ocpi_connections.current_all(conn) if c.registered}
    taken = sorted(live & {str(p.party) for p in data.partners})
    if taken:
        raise AlreadyConnected(
            f"{len(taken)} of the simulated partners are connected already ({', '.join(taken[:3])}"
            f"{', …' if len(taken) > 3 else ''}), by an earlier simulation: simulate over HTTP "
            "on a fresh database, or end them with `roamclear partners disconnect`"
        )


def send_over_http(
    settings: Settings,
    hub_url: str,
    data: ReferenceData,
    submissions: Iterable[Submission],
    progress: Callable[[int], None] = lambda _: None,
    platforms: PartnerPlatforms | None = None,
) -> HttpRun:
    """Connect the simulated partners and send the stream. Their platforms are `platforms`,
    started by the caller when they must outlive the run (to receive CDR deliveries), else
    served for the run only."""
    if platforms is None:
        with PartnerPlatforms(simulated_partners(data)) as own:
            return send_over_http(settings, hub_url, data, submissions, progress, own)
    check_not_connected(settings, data)
    # what the operator does: partners and agreements are contracts, not OCPI
    reference.add_partners(settings, [(p.party, p.role, p.name) for p in data.partners])
    reference.publish_agreements(settings, data.agreements)
    connected = asyncio.run(connect(settings, hub_url, platforms, data.partners))
    pushed = asyncio.run(push_reference(hub_url, connected, data))
    tally = asyncio.run(drive(hub_url, connected, submissions, progress))
    return HttpRun(len(connected), pushed, tally)
