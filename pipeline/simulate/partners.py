"""The simulated roaming partners: CPOs and eMSPs, and the countries their sites are in.

The first partners of each role come from a fixed catalogue of realistic-looking (fictional)
companies; larger scenarios add synthetic ones (party ids C01.., M01..). A country brings
its time zone, VAT rate (percent, as tariffs state it) and a few cities for locations.

    >>> cpos, emsps = build_partners(2, 2)
    >>> [str(p.party) for p in cpos + emsps]
    ['NL*TLP', 'DE*ION', 'DE*EMP', 'NL*SHL']
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, NamedTuple

from schemas.hub.party import PartnerRole, PartyRef


class Partner(NamedTuple):
    """A roaming partner: who, in which role (a simulated one is never BOTH), and its
    display name."""

    party: PartyRef
    role: PartnerRole
    name: str


@dataclass(frozen=True, slots=True)
class City:
    """Where a location can be: the street is numbered per location."""

    code: str  # ASCII, for location ids (UN/LOCODE-like)
    name: str
    postal_code: str
    street: str
    latitude: Decimal
    longitude: Decimal


@dataclass(frozen=True, slots=True)
class Country:
    """A country (or overseas region) with its own zone and VAT."""

    alpha3: str
    time_zone: str
    vat_percent: Decimal
    cities: tuple[City, ...]


def _city(code: str, name: str, postal: str, street: str, lat: str, lon: str) -> City:
    return City(code, name, postal, street, Decimal(lat), Decimal(lon))


COUNTRIES: Final[dict[str, Country]] = {
    "NL": Country("NLD", "Europe/Amsterdam", Decimal("21"), (
        _city("AMS", "Amsterdam", "1012AB", "Stationsplein", "52.378900", "4.900400"),
        _city("UTC", "Utrecht", "3521AZ", "Jaarbeursplein", "52.089400", "5.110200"),
        _city("RTM", "Rotterdam", "3013AJ", "Weena", "51.924400", "4.469800"),
    )),
    "DE": Country("DEU", "Europe/Berlin", Decimal("19"), (
        _city("BER", "Berlin", "10557", "Invalidenstraße", "52.525100", "13.369400"),
        _city("MUC", "München", "80335", "Arnulfstraße", "48.140200", "11.558300"),
        _city("CGN", "Köln", "50667", "Trankgasse", "50.942900", "6.958100"),
    )),
    "BE": Country("BEL", "Europe/Brussels", Decimal("21"), (
        _city("GNT", "Gent", "9000", "Koningin Maria Hendrikaplein", "51.035700", "3.710600"),
        _city("ANR", "Antwerpen", "2018", "Koningin Astridplein", "51.217200", "4.421100"),
        _city("LGG", "Liège", "4020", "Place des Guillemins", "50.624300", "5.566800"),
    )),
    "FR": Country("FRA", "Europe/Paris", Decimal("20"), (
        _city("PAR", "Paris", "75010", "Rue de Dunkerque", "48.880900", "2.355300"),
        _city("LYS", "Lyon", "69003", "Place Charles Béraudier", "45.760600", "4.859500"),
        _city("BOD", "Bordeaux", "33800", "Rue Charles Domercq", "44.825800", "-0.556300"),
    )),
    "ES": Country("ESP", "Europe/Madrid", Decimal("21"), (
        _city("MAD", "Madrid", "28045", "Glorieta de Carlos V", "40.406700", "-3.689600"),
        _city("VLC", "Valencia", "46007", "Carrer d'Alacant", "39.466000", "-0.377500"),
        _city("SVQ", "Sevilla", "41007", "Avenida de Kansas City", "37.391700", "-5.975300"),
    )),
    "AT": Country("AUT", "Europe/Vienna", Decimal("20"), (
        _city("VIE", "Wien", "1100", "Am Hauptbahnhof", "48.185300", "16.376000"),
        _city("GRZ", "Graz", "8020", "Europaplatz", "47.072400", "15.416000"),
    )),
    "IT": Country("ITA", "Europe/Rome", Decimal("22"), (
        _city("MIL", "Milano", "20124", "Piazza Duca d'Aosta", "45.486300", "9.204900"),
        _city("TRN", "Torino", "10125", "Corso Vittorio Emanuele II", "45.062100", "7.678500"),
    )),
    "PT": Country("PRT", "Europe/Lisbon", Decimal("23"), (
        _city("LIS", "Lisboa", "1990-094", "Avenida Dom João II", "38.767500", "-9.099800"),
        _city("OPO", "Porto", "4000-069", "Praça de Almeida Garrett", "41.145700", "-8.610400"),
    )),
}  # fmt: skip

# Réunion is part of France and of the euro area, in UTC+4 with its own VAT rate (8.5 %):
# one FR location there gives the scenario a non-European zone without another currency.
REUNION: Final = Country("REU", "Indian/Reunion", Decimal("8.5"), (
    _city("RUN", "Saint-Denis", "97400", "Boulevard de l'Océan", "-20.878900", "55.448100"),
))  # fmt: skip

_CPO_CATALOGUE: Final = (
    ("NL", "TLP", "Tulpnet Mobility B.V."),
    ("DE", "ION", "Ionstrom Laden GmbH"),
    ("BE", "ALF", "Alfacharge BV"),
    ("FR", "CHA", "Charge & Go France SAS"),
    ("ES", "IBE", "Iberorecarga S.L."),
    ("AT", "VOL", "Voltalpin GmbH"),
    ("IT", "ELC", "Elettrocittà S.r.l."),
    ("PT", "LUZ", "Luzcarga Lda."),
)
_EMSP_CATALOGUE: Final = (
    ("DE", "EMP", "E-Mobil Plus GmbH"),
    ("NL", "SHL", "Stroomhal B.V."),
    ("BE", "EVB", "EV Belgium NV"),
    ("FR", "MOB", "Mobilicharge SAS"),
    ("NL", "PLG", "Plugwijzer B.V."),
    ("DE", "LFX", "Ladefuchs Mobility GmbH"),
    ("ES", "REC", "Recarga Fácil S.L."),
    ("IT", "MOV", "Movielettrico S.p.A."),
    ("AT", "SMT", "SmartLaden Austria GmbH"),
    ("GB", "OAK", "Oakfield Charge Ltd"),
    ("DK", "NRG", "Nordenergi ApS"),
    ("CH", "SWC", "SwissCharge AG"),
)


def _partners(
    count: int, catalogue: tuple[tuple[str, str, str], ...], role: PartnerRole, prefix: str
) -> tuple[Partner, ...]:
    partners = []
    for index in range(count):
        if index < len(catalogue):
            country, party_id, name = catalogue[index]
        else:  # synthetic partners cycle through the catalogue's countries
            country = catalogue[index % len(catalogue)][0]
            party_id, name = f"{prefix}{index:02d}", f"Simulated {role.value} {index:02d}"
        party = PartyRef(country_code=country, party_id=party_id)
        partners.append(Partner(party, role, name))
    return tuple(partners)


def build_partners(cpos: int, emsps: int) -> tuple[tuple[Partner, ...], tuple[Partner, ...]]:
    """(CPOs, eMSPs) of a scenario."""
    return (
        _partners(cpos, _CPO_CATALOGUE, PartnerRole.CPO, "C"),
        _partners(emsps, _EMSP_CATALOGUE, PartnerRole.EMSP, "M"),
    )


def country_of(cpo: Partner) -> Country:
    """The country whose sites, zone and VAT a CPO has (synthetic ones included)."""
    return COUNTRIES[cpo.party.country_code]
