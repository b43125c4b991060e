"""The record factory: one method per category, drawing from one seeded random stream.

`RecordFactory.make(code, index)` returns the submission at position `index` of the plan.
The factory remembers a bounded pool of earlier valid originals (`ORIGINALS_POOL_MAX`),
from which exact duplicates and conflicting duplicates pick any, and credits pick one not yet
credited (and not one with a mismatched declared total, so every credit reverses a booked
charge exactly). Memory stays bounded however many records are streamed.

Sessions come from a fixed number of templates per EVSE (`TEMPLATES_PER_SITE`, placed on
random days), so their pricing signatures repeat and `rate_cdr` runs once per signature:
that keeps 100,000 records within seconds while every declared total is still exactly the
engine's own result.

Timing: a CDR's `last_updated` is its session's end plus the CPO's delay (1 min to 4 h);
its envelope's `occurred_at` follows within 5 minutes. A re-send or a credit comes later,
never after `now`.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final

from pipeline.simulate.agreements import MISMATCH_DELTA_MIN
from pipeline.simulate.config import Category, ScenarioConfig
from pipeline.simulate.faults import break_schema, malformed_value
from pipeline.simulate.locations import Site
from pipeline.simulate.plan import CODES, ORIGINALS_POOL_MAX, VALID_MISMATCH_CODE
from pipeline.simulate.records import (
    Identity,
    cdr_wire,
    declared_costs,
    dumps,
    envelope,
    event_id,
    rate_periods,
    shifted,
    wire_periods,
)
from pipeline.simulate.reference import ReferenceData
from pipeline.simulate.sessions import (
    SESSION_LEAD_MAX_S,
    SessionShape,
    SessionTemplate,
    draw_template,
    place_session,
    pricing_signature,
    session_days,
)
from pipeline.simulate.tariffs import UNPUBLISHED_TARIFF_ID
from schemas.hub.agreement import Agreement
from settlement.rating import CostTotals

DRIVERS_PER_EMSP: Final = 5_000
TEMPLATES_PER_SITE: Final = 128  # distinct sessions per EVSE: prices repeat, so rating is cached
PRICES_CACHED_MAX: Final = 200_000  # about 300 bytes each
CENT: Final = Decimal("0.01")
PER_TEN_THOUSAND: Final = 10_000
POOL_BITS: Final = ORIGINALS_POOL_MAX.bit_length() - 1
assert 1 << POOL_BITS == ORIGINALS_POOL_MAX, "random replacement draws a bit-sized index"


@dataclass(frozen=True, slots=True)
class Submission:
    """One record for roamclear.cdr.submitted, and what it is.

    `key` is the canonical partition key (a credit's is the credited CDR's), `cdr_key` the
    CDR's own canonical key (None where the record carries no trustworthy CDR),
    `original_index` the position of the record a duplicate or credit derives from, `fault`
    how a schema_invalid or malformed_json record is broken. Every record but a forged one
    is sent with the hub's proof.
    """

    category: Category
    key: bytes
    value: bytes
    cdr_key: str | None
    declared_mismatch: bool = False
    original_index: int | None = None
    fault: str | None = None

    @property
    def signed(self) -> bool:
        return self.category is not Category.FORGED


@dataclass(frozen=True, slots=True)
class _Original:
    """A submitted valid CDR, kept to derive re-sends and credits from."""

    index: int
    identity: Identity
    site: Site
    shape: SessionShape
    periods: list[dict[str, Any]]  # wire form; never mutated
    costs: dict[str, dict[str, Decimal]]
    cdr_json: bytes
    embed: bool
    last_updated_s: int
    occurred_s: int


@dataclass(frozen=True, slots=True)
class _Draft:
    """A freshly drawn CDR: wire form and what it was made from."""

    identity: Identity
    site: Site
    shape: SessionShape
    periods: list[dict[str, Any]]
    costs: dict[str, dict[str, Decimal]]
    cdr: dict[str, Any]
    embed: bool
    last_updated_s: int
    occurred_s: int


class RecordFactory:
    """Makes the submissions of one scenario, in plan order (stateful, deterministic)."""

    def __init__(self, config: ScenarioConfig, reference: ReferenceData) -> None:
        self.config = config
        self.reference = reference
        self.rng = random.Random(f"roamclear-simulate:{config.seed}:records")
        self.now_s = int(config.now.timestamp())
        self.earliest_s = self.now_s - config.window_days * 86_400
        self.latest_s = self.now_s - SESSION_LEAD_MAX_S
        self.embed_per_ten_thousand = int(config.embedded_tariff_share * PER_TEN_THOUSAND)
        self.sequence = 0
        self.templates: dict[tuple[int, int], SessionTemplate] = {}  # (site, slot)
        self.days: dict[str, tuple[date, int]] = {}  # zone -> first day, number of days
        self.prices: dict[tuple[object, ...], CostTotals] = {}  # by pricing signature
        self.originals: list[_Original] = []  # any valid CDR
        self.creditable: list[_Original] = []  # valid CDRs not yet credited
        coverage = reference.coverage
        self.sites_by_cpo = [
            tuple(s for s in reference.sites if s.cpo_index == cpo)
            for cpo in range(len(reference.cpos))
        ]
        self.tolerant_sites = tuple(s for s in reference.sites if coverage.tolerant(s.cpo_index))
        assert self.tolerant_sites, "the first agreement admits mismatches (agreements.py)"

    def make(self, code: int, index: int) -> Submission:
        """The submission at `index`, of the plan's category `code`."""
        if code == VALID_MISMATCH_CODE:
            return self._valid(index, mismatch=True)
        category = CODES[code]
        if category is Category.VALID:
            return self._valid(index, mismatch=False)
        if category is Category.EXACT_DUPLICATE:
            return self._exact_duplicate()
        if category is Category.CONFLICTING_DUPLICATE:
            return self._conflicting_duplicate()
        if category is Category.CREDIT:
            return self._credit()
        if category is Category.MALFORMED_JSON:
            return self._malformed()
        if category is Category.SCHEMA_INVALID:
            return self._schema_invalid()
        if category is Category.UNKNOWN_TARIFF:
            return self._unknown_tariff()
        if category is Category.FORGED:
            return self._forged()
        return self._no_agreement()

    # -- drawing -------------------------------------------------------------------------

    def _event_id(self) -> str:
        return event_id(self.rng.getrandbits(128))

    def _later(self, moment_s: int, low_s: int, high_s: int) -> int:
        return min(self.now_s, moment_s + self.rng.randint(low_s, high_s))

    def _identity(self, site: Site, emsp_index: int) -> Identity:
        self.sequence += 1
        sequence, rng = self.sequence, self.rng
        cpo = self.reference.cpos[site.cpo_index].party
        style = site.cpo_index % 3
        if style == 0:
            cdr_id, session_id = f"CDR-{sequence:010d}", f"SES-{sequence:010d}"
        elif style == 1:
            cdr_id, session_id = f"{cpo.party_id}{sequence:012d}", f"{sequence:012d}"
        else:  # uuid-shaped, unique by the sequence in its last 48 bits
            cdr_id = str(uuid.UUID(int=(rng.getrandbits(80) << 48) | sequence))
            session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        emsp = self.reference.emsps[emsp_index].party
        driver = rng.randrange(DRIVERS_PER_EMSP)
        uid = f"{(driver * 0x9E3779B97F4A7C15 + emsp_index * 0xC2B2AE3D27D4EB4F) % 2**56:014X}"
        app_user = driver % 7 == 0
        check = chr(65 + (driver * 7 + emsp_index) % 26)
        contract_id = f"{emsp.country_code}-{emsp.party_id}-C{driver:08d}-{check}"
        token_type = "APP_USER" if app_user else "RFID"
        auth = "COMMAND" if app_user else rng.choice(("WHITELIST", "AUTH_REQUEST"))
        reference = None if auth == "WHITELIST" else f"AUTH-{rng.getrandbits(48):012X}"
        token = (emsp.country_code, emsp.party_id, uid, token_type, contract_id)
        return Identity(cpo.country_code, cpo.party_id, cdr_id, session_id, token, auth, reference)

    def _draft(
        self,
        site: Site,
        emsp_index: int,
        tariff_id: str | None = None,
        embed: bool | None = None,
        mismatch_max: Decimal | None = None,
    ) -> _Draft:
        """A CDR at `site` for a driver of the eMSP, priced by the hub's engine."""
        rng = self.rng
        identity = self._identity(site, emsp_index)
        shape = self._session(site)
        periods = wire_periods(shape, tariff_id or site.tariff.id)
        costs = declared_costs(self._price(site, shape, periods))
        if mismatch_max is not None:
            costs["total_cost"] = shifted(costs["total_cost"], self._delta(costs, mismatch_max))
        if embed is None:
            embed = rng.randrange(PER_TEN_THOUSAND) < self.embed_per_ten_thousand
        last_updated = shape.end_s + rng.randint(60, 4 * 3600)
        occurred = last_updated + rng.randint(1, 300)
        cdr = cdr_wire(identity, site, shape, periods, costs, last_updated, embed)
        return _Draft(identity, site, shape, periods, costs, cdr, embed, last_updated, occurred)

    def _session(self, site: Site) -> SessionShape:
        """A session from one of the site's templates, on a random day of the window."""
        slot = (site.index, self.rng.randrange(TEMPLATES_PER_SITE))
        template = self.templates.get(slot)
        if template is None:
            template = self.templates[slot] = draw_template(self.rng, site)
        days = self.days.get(site.zone.key)
        if days is None:
            first, last = session_days(site, self.earliest_s, self.latest_s)
            days = self.days[site.zone.key] = (first, (last - first).days + 1)
        day = days[0] + timedelta(days=self.rng.randrange(days[1]))
        return place_session(template, site, day)

    def _price(self, site: Site, shape: SessionShape, periods: list[dict[str, Any]]) -> CostTotals:
        """`rate_cdr`'s totals, computed once per pricing signature (templates repeat)."""
        signature = pricing_signature(site, shape)
        totals = self.prices.get(signature)
        if totals is None:
            if len(self.prices) >= PRICES_CACHED_MAX:
                self.prices.clear()
            totals = self.prices[signature] = rate_periods(site, shape, periods)
        return totals

    def _delta(self, costs: dict[str, dict[str, Decimal]], largest: Decimal) -> Decimal:
        """A declared-total error beyond 0.01 and within the agreement's tolerance."""
        cents = self.rng.randint(int(MISMATCH_DELTA_MIN.scaleb(2)), int(largest.scaleb(2)))
        delta = cents * CENT
        below = costs["total_cost"]["excl_vat"] > delta and self.rng.randrange(2) == 0
        return -delta if below else delta

    def _covered(self, cpo_index: int) -> tuple[int, Agreement]:
        emsp_index, agreement = self.rng.choice(self.reference.coverage.covered[cpo_index])
        return emsp_index, agreement

    def _any_site(self) -> Site:
        return self.rng.choice(self.reference.sites)

    def _submission(
        self, category: Category, draft: _Draft, cdr: dict[str, Any] | None = None, **extra: Any
    ) -> Submission:
        key = draft.identity.key
        cdr_json = dumps(draft.cdr if cdr is None else cdr)
        submitter = (draft.identity.country_code, draft.identity.party_id)
        value = envelope(self._event_id(), draft.occurred_s, submitter, cdr_json)
        return Submission(category, key.encode(), value, key, **extra)

    # -- categories ----------------------------------------------------------------------

    def _valid(self, index: int, mismatch: bool) -> Submission:
        if mismatch:
            site = self.rng.choice(self.tolerant_sites)
            pairs = self.reference.coverage.tolerant(site.cpo_index)
            emsp_index, agreement = self.rng.choice(pairs)
            draft = self._draft(site, emsp_index, mismatch_max=agreement.tolerance)
        else:
            site = self._any_site()
            draft = self._draft(site, self._covered(site.cpo_index)[0])
        submission = self._submission(Category.VALID, draft, declared_mismatch=mismatch)
        cdr_json = submission.value[submission.value.index(b'"cdr":') + 6 : -1]
        original = _Original(
            index, draft.identity, site, draft.shape, draft.periods, draft.costs, cdr_json,
            draft.embed, draft.last_updated_s, draft.occurred_s,
        )  # fmt: skip
        self._remember(self.originals, original)
        if not mismatch:
            self._remember(self.creditable, original)
        return submission

    def _remember(self, pool: list[_Original], original: _Original) -> None:
        if len(pool) < ORIGINALS_POOL_MAX:
            pool.append(original)
        else:  # random replacement keeps old and recent originals alike
            pool[self.rng.getrandbits(POOL_BITS)] = original

    def _exact_duplicate(self) -> Submission:
        original = self.rng.choice(self.originals)
        identity = original.identity
        occurred = self._later(original.occurred_s, 600, 3 * 86_400)
        submitter = (identity.country_code, identity.party_id)
        value = envelope(self._event_id(), occurred, submitter, original.cdr_json)
        return Submission(
            Category.EXACT_DUPLICATE, identity.key.encode(), value, identity.key,
            original_index=original.index,
        )  # fmt: skip

    def _conflicting_duplicate(self) -> Submission:
        """The original's id and session, with more energy in its last charging period."""
        original = self.rng.choice(self.originals)
        charging = [i for i, p in enumerate(original.shape.periods) if p.energy_wh is not None]
        periods = list(original.shape.periods)
        last = periods[charging[-1]]
        assert last.energy_wh is not None
        periods[charging[-1]] = replace(last, energy_wh=last.energy_wh + self.rng.randint(50, 3000))
        shape = replace(original.shape, periods=tuple(periods))
        site = original.site
        wire = wire_periods(shape, str(original.periods[0]["tariff_id"]))
        costs = declared_costs(self._price(site, shape, wire))
        last_updated = self._later(original.last_updated_s, 600, 2 * 86_400)
        draft = _Draft(
            original.identity, site, shape, wire, costs,
            cdr_wire(original.identity, site, shape, wire, costs, last_updated, original.embed),
            original.embed, last_updated, self._later(last_updated, 1, 300),
        )  # fmt: skip
        return self._submission(
            Category.CONFLICTING_DUPLICATE, draft, original_index=original.index
        )

    def _credit(self) -> Submission:
        """A credit CDR reversing a not yet credited original, keyed by the original."""
        pool = self.creditable
        position = self.rng.randrange(len(pool))
        original = pool[position]
        pool[position] = pool[-1]
        pool.pop()
        identity = original.identity
        negated = {
            field: {side: Decimal(0) - amount for side, amount in price.items()}
            for field, price in original.costs.items()
        }
        last_updated = self._later(original.last_updated_s, 3600, 10 * 86_400)
        cdr = cdr_wire(
            identity, original.site, original.shape, original.periods, negated, last_updated,
            original.embed, credit_reference_id=identity.cdr_id,
        )  # fmt: skip
        occurred = self._later(last_updated, 1, 300)
        submitter = (identity.country_code, identity.party_id)
        value = envelope(self._event_id(), occurred, submitter, dumps(cdr))
        credit_key = f"{identity.country_code}*{identity.party_id}*{cdr['id']}".upper()
        return Submission(
            Category.CREDIT, identity.key.encode(), value, credit_key,
            original_index=original.index,
        )  # fmt: skip

    def _malformed(self) -> Submission:
        site = self._any_site()
        draft = self._draft(site, self._covered(site.cpo_index)[0])
        well_formed = self._submission(Category.MALFORMED_JSON, draft)
        value, kind = malformed_value(well_formed.value, draft.cdr, self.rng)
        return replace(well_formed, value=value, cdr_key=None, fault=kind)

    def _schema_invalid(self) -> Submission:
        site = self._any_site()
        draft = self._draft(site, self._covered(site.cpo_index)[0])
        broken, kind = break_schema(draft.cdr, self.rng)
        submission = self._submission(Category.SCHEMA_INVALID, draft, broken, fault=kind)
        return replace(submission, cdr_key=None)

    def _unknown_tariff(self) -> Submission:
        site = self._any_site()
        emsp_index = self._covered(site.cpo_index)[0]
        draft = self._draft(site, emsp_index, tariff_id=UNPUBLISHED_TARIFF_ID, embed=False)
        return self._submission(Category.UNKNOWN_TARIFF, draft)

    def _forged(self) -> Submission:
        """A well-formed CDR of a real CPO and eMSP pair; only its proof is missing (the
        sender leaves it unsigned: `Submission.signed`)."""
        site = self._any_site()
        draft = self._draft(site, self._covered(site.cpo_index)[0])
        return self._submission(Category.FORGED, draft)

    def _no_agreement(self) -> Submission:
        cpo_index, emsp_index = self.rng.choice(self.reference.coverage.uncovered)
        site = self.rng.choice(self.sites_by_cpo[cpo_index])
        return self._submission(Category.NO_AGREEMENT, self._draft(site, emsp_index))
