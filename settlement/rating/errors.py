"""Why a CDR could not be priced: one exception root, a machine-readable reason per rule.

Every subclass names the rule that broke and what an operator should do. The clearing agent
turns them into rejections on ``roamclear.rejected`` with ``reason_code`` as the reason; the
``rate`` CLI prints ``reason_code: message`` and exits 2. A CDR is never priced at a silent
zero: when nothing in it can be priced, that is an error too.

    >>> try:
    ...     raise MissingTimeZone("tariff 14 uses start_time; no zone for location LOC-1")
    ... except RatingError as error:
    ...     print(error.reason_code, "-", error)
    missing_time_zone - tariff 14 uses start_time; no zone for location LOC-1
"""

from __future__ import annotations

from typing import ClassVar


class RatingError(Exception):
    """A CDR could not be priced. Subclasses carry the reason; catch this one."""

    reason_code: ClassVar[str] = "rating_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoMatchingElement(RatingError):
    """The CDR has priced volumes but no tariff element's restrictions held in any period.

    mod_tariffs (Tariff object) makes an unmatched dimension free, so a single unmatched
    period is not an error; a whole session that matches nothing means the tariff is not the
    one the CPO used (e.g. a day-ahead tariff for another day). Ask the CPO for the tariff.
    """

    reason_code: ClassVar[str] = "no_matching_element"


class MissingTimeZone(RatingError):
    """The tariff has local-time restrictions and the location's time zone is unknown.

    Pass the zone explicitly or register the location; roamclear never guesses a zone.
    """

    reason_code: ClassVar[str] = "missing_time_zone"


class CurrencyMismatch(RatingError):
    """The CDR's currency differs from the tariff's; the CPO sent the wrong tariff or CDR."""

    reason_code: ClassVar[str] = "currency_mismatch"


class EndBeforeStart(RatingError):
    """The CDR ends before it starts; reject it back to the CPO."""

    reason_code: ClassVar[str] = "end_before_start"


class NegativeVolume(RatingError):
    """A priced dimension has a negative volume in a non-credit CDR; reject it to the CPO."""

    reason_code: ClassVar[str] = "negative_volume"


class NoTariff(RatingError):
    """No tariff was given and the CDR embeds none that its periods reference."""

    reason_code: ClassVar[str] = "no_tariff"


class AmbiguousTariff(RatingError):
    """The CDR's periods reference several embedded tariffs, or several are embedded and no
    period says which applies; pass the tariff explicitly."""

    reason_code: ClassVar[str] = "ambiguous_tariff"


class TariffNotValid(RatingError):
    """The session started outside the tariff's start_date_time/end_date_time; the CPO must
    send the tariff version that was valid then."""

    reason_code: ClassVar[str] = "tariff_not_valid"


class PeriodsLimitExceeded(RatingError):
    """The CDR has more charging periods than ``CHARGING_PERIODS_MAX``; reject it."""

    reason_code: ClassVar[str] = "too_many_periods"
