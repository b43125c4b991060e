"""Property tests of rating invariants (hypothesis), each a named predicate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.ocpi.tariff import Tariff
from settlement.rating import RatedCdr, rate_cdr
from tests.unit.rating.factories import cdr, component, element, period, tariff

D = Decimal
START = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
ZONE = "Europe/Berlin"
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)

volumes = st.decimals(min_value=D("0"), max_value=D("200"), places=3, allow_nan=False)
prices = st.decimals(min_value=D("0"), max_value=D("5"), places=2, allow_nan=False)
vats = st.one_of(st.none(), st.sampled_from(["0", "5.2", "10", "21"]))
steps = st.sampled_from([0, 1, 100, 500, 1000])


def _at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def total_excl(rated: RatedCdr) -> Decimal:
    return rated.exact_totals.total_cost.excl_vat


def never_negative(rated: RatedCdr) -> bool:
    totals = rated.totals
    return all(
        price is None or (price.excl_vat >= 0 and price.incl_vat >= 0)
        for price in (
            totals.total_cost,
            totals.total_energy_cost,
            totals.total_time_cost,
            totals.total_parking_cost,
            totals.total_fixed_cost,
        )
    )


def _energy_tariff(price: Decimal, vat: str | None, step: int) -> Tariff:
    return tariff(element(component("ENERGY", str(price), step=step, vat=vat)))


@PROPERTY_SETTINGS
@given(price=prices, vat=vats, step=steps, a=volumes, b=volumes)
def test_energy_only_tariff_is_monotone_in_energy(
    price: Decimal, vat: str | None, step: int, a: Decimal, b: Decimal
) -> None:
    """More energy never costs less with an energy-only tariff (mod_tariffs ENERGY)."""
    t = _energy_tariff(price, vat, step)
    low, high = sorted((a, b))
    cheap = rate_cdr(cdr(period(_at(0), energy=str(low))), t)
    dear = rate_cdr(cdr(period(_at(0), energy=str(high))), t)
    assert total_excl(cheap) <= total_excl(dear)
    assert cheap.totals.total_cost.incl_vat <= dear.totals.total_cost.incl_vat


@PROPERTY_SETTINGS
@given(
    price=prices,
    time_price=prices,
    energy=volumes,
    share=st.integers(min_value=0, max_value=100),
    split_minute=st.integers(min_value=1, max_value=59),
)
def test_splitting_a_period_without_boundary_keeps_the_price(
    price: Decimal, time_price: Decimal, energy: Decimal, share: int, split_minute: int
) -> None:
    """mod_cdrs ChargingPeriod: extra in-between periods are allowed; without a restriction
    boundary or step_size inside, they do not change the price."""
    t = tariff(
        element(
            component("FLAT", "0.50"),
            component("ENERGY", str(price), step=0),
            component("TIME", str(time_price), step=0),
        )
    )
    whole = rate_cdr(cdr(period(_at(0), energy=str(energy), time="1"), end=_at(60)), t)
    first = (energy * share / 100).quantize(D("0.001"))
    hours = (D(split_minute) / 60).quantize(D("0.000001"))  # CDR volumes have finite digits
    split = rate_cdr(
        cdr(
            period(_at(0), energy=str(first), time=str(hours)),
            period(_at(split_minute), energy=str(energy - first), time=str(1 - hours)),
            end=_at(60),
        ),
        t,
    )
    assert total_excl(whole) == total_excl(split)


@PROPERTY_SETTINGS
@given(energy=volumes, low=prices, span=prices)
def test_min_price_floors_and_max_price_caps(energy: Decimal, low: Decimal, span: Decimal) -> None:
    """mod_tariffs Tariff min_price / max_price: min <= total_cost <= max."""
    high = low + span
    t = tariff(
        element(component("ENERGY", "0.25", vat="10")),
        min_price={"excl_vat": str(low), "incl_vat": str(low * D("1.1"))},
        max_price={"excl_vat": str(high), "incl_vat": str(high * D("1.1"))},
    )
    rated = rate_cdr(cdr(period(_at(0), energy=str(energy))), t)
    assert low <= rated.totals.total_cost.excl_vat <= high


@PROPERTY_SETTINGS
@given(
    energy=volumes,
    time_hours=volumes,
    parking_hours=volumes,
    price=prices,
    step=steps,
)
def test_non_credit_cdrs_never_price_negative(
    energy: Decimal, time_hours: Decimal, parking_hours: Decimal, price: Decimal, step: int
) -> None:
    """mod_cdrs Credit CDRs: only credit CDRs carry negative amounts."""
    t = tariff(
        element(component("ENERGY", str(price), step=step), component("TIME", "1.00", step=step)),
        element(component("PARKING_TIME", "2.00", step=300)),
    )
    rated = rate_cdr(
        cdr(
            period(_at(0), energy=str(energy), time=str(time_hours)),
            period(_at(120), parking=str(parking_hours)),
            end=_at(240),
        ),
        t,
    )
    assert never_negative(rated)


@PROPERTY_SETTINGS
@given(data=st.data(), energy=volumes, time_hours=volumes)
def test_unordered_inputs_do_not_change_the_price(
    data: st.DataObject, energy: Decimal, time_hours: Decimal
) -> None:
    """The spec orders tariff elements, not dimensions within a period nor day_of_week
    entries: permuting those leaves the price unchanged."""
    days = ["MONDAY", "TUESDAY", "WEDNESDAY", "SATURDAY"]
    shuffled_days = data.draw(st.permutations(days))
    base = {"energy": str(energy), "time": str(time_hours), "max_power": "11"}
    order = data.draw(st.permutations(list(base)))

    def priced(day_list: list[str], keys: list[str]) -> Decimal:
        t = tariff(
            element(
                component("ENERGY", "0.40"),
                component("TIME", "1.00"),
                day_of_week=day_list,
                max_power="22",
            ),
            element(component("ENERGY", "0.30"), component("TIME", "0.50")),
        )
        return total_excl(
            rate_cdr(
                cdr(period(_at(0), **{k: base[k] for k in keys}), end=_at(60)), t, time_zone=ZONE
            )
        )

    assert priced(days, list(base)) == priced(list(shuffled_days), list(order))
