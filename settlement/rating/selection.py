"""Which tariff prices a CDR, and is it allowed to?

- A tariff passed by the caller is used for every period (its id need not match the
  periods' ``tariff_id``: the caller knows better, e.g. a published tariff version).
- Otherwise the CDR's embedded ``tariffs``: a single one is used; among several, the one the
  periods reference by ``tariff_id`` (mod_cdrs ChargingPeriod). Several versions of one id
  are narrowed to those valid at the session start. Periods that reference several different
  tariffs are refused (``AmbiguousTariff``): a tariff switch inside a session is legal OCPI
  but not supported here yet.
- The tariff must be valid when the session started (mod_tariffs Tariff object:
  start_date_time / end_date_time, "a driver accepts the tariff which is valid when they
  start their charging session"): ``start_date_time <= session start <= end_date_time``.
- Its currency must be the CDR's.

    >>> # select_tariff(cdr_with_one_embedded_tariff, None) is cdr.tariffs[0]
"""

from __future__ import annotations

from datetime import datetime

from schemas.ocpi.cdr import Cdr
from schemas.ocpi.tariff import Tariff
from settlement.rating.errors import AmbiguousTariff, CurrencyMismatch, NoTariff, TariffNotValid
from settlement.rating.model import CompiledTariff


def _valid_at(tariff: Tariff, moment: datetime) -> bool:
    if tariff.start_date_time is not None and moment < tariff.start_date_time:
        return False
    return tariff.end_date_time is None or moment <= tariff.end_date_time


def select_tariff(cdr: Cdr, tariff: Tariff | None) -> Tariff:
    """The tariff that prices ``cdr`` (see the module docstring for the rules)."""
    if tariff is not None:
        return tariff
    embedded = cdr.tariffs
    if not embedded:
        raise NoTariff(f"CDR {cdr.id!r} embeds no tariff and none was given")
    if len(embedded) == 1:
        return embedded[0]
    referenced = sorted({p.tariff_id for p in cdr.charging_periods if p.tariff_id is not None})
    if len(referenced) > 1:
        raise AmbiguousTariff(
            f"CDR {cdr.id!r} periods reference several tariffs {referenced}; "
            "a tariff switch within a session is not supported, pass the tariff explicitly"
        )
    if not referenced:
        raise AmbiguousTariff(
            f"CDR {cdr.id!r} embeds {len(embedded)} tariffs and no period names one"
        )
    matches = [t for t in embedded if t.id == referenced[0]]
    if len(matches) > 1:
        matches = [t for t in matches if _valid_at(t, cdr.start_date_time)]
    if not matches:
        raise NoTariff(f"CDR {cdr.id!r} references tariff {referenced[0]!r}, not embedded")
    if len(matches) > 1:
        raise AmbiguousTariff(
            f"CDR {cdr.id!r} embeds {len(matches)} versions of tariff {referenced[0]!r} "
            "valid at the session start"
        )
    return matches[0]


def check_applicable(cdr: Cdr, compiled: CompiledTariff) -> None:
    """Raise unless ``compiled`` may price ``cdr`` (currency, validity window)."""
    if cdr.currency != compiled.currency:
        raise CurrencyMismatch(
            f"CDR currency {cdr.currency} differs from tariff {compiled.ref.id!r} "
            f"currency {compiled.currency}"
        )
    start = cdr.start_date_time
    if compiled.start_date_time is not None and start < compiled.start_date_time:
        raise TariffNotValid(
            f"tariff {compiled.ref.id!r} becomes valid at {compiled.start_date_time.isoformat()}, "
            f"after the session start {start.isoformat()}"
        )
    if compiled.end_date_time is not None and start > compiled.end_date_time:
        raise TariffNotValid(
            f"tariff {compiled.ref.id!r} stopped being valid at "
            f"{compiled.end_date_time.isoformat()}, before the session start {start.isoformat()}"
        )
