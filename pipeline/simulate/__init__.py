"""Partner traffic generator: a deterministic scenario of CDR submissions, pure (no Kafka,
no database), for demos, load tests and end-to-end checks of the books.

    >>> from pipeline.simulate import ScenarioConfig, generate_scenario
    >>> scenario = generate_scenario(ScenarioConfig(cdrs=100, seed=7))
    >>> scenario.expected.submitted == len(scenario.submissions) == 100
    True

A scenario holds the reference data the hub must know first (partners, tariffs, locations
with their time zones, agreements) and the records for `roamclear.cdr.submitted`, each a
`Submission(category, key, value, cdr_key, ...)`: `value` is the exact bytes of a
cdr.submitted envelope (`to_ocpi_json(parse_envelope(value)) == value` for every record that
is JSON), `key` the canonical partition key (`CdrKey.partition_key`). The same config gives
the same bytes; `iter_submissions` streams them without holding them all.

Categories and the outcome the hub must reach for each (DESIGN.md invariant 2,
submitted = ledgered + rejected + duplicates; `Expected` holds the counts):

    valid                  ledgered    a charge; 1 % (declared_mismatch_share) declare a
                                       total_cost 0.02..tolerance off the hub's price, under
                                       an agreement whose tolerance admits it, so the
                                       settlement basis (HUB_COMPUTED / CPO_DECLARED) decides
                                       the booked amount (flag `declared_mismatch`)
    credit                 ledgered    a reversal of an earlier valid CDR (each credited once;
                                       never one with a declared mismatch)
    exact_duplicate        duplicate   an earlier valid CDR re-sent: new envelope, same CDR bytes
    conflicting_duplicate  rejected    an earlier valid CDR's id with other energy and price
                                       (reason cdr_id_conflict)
    malformed_json         rejected    not JSON (reason malformed_json)
    schema_invalid         rejected    JSON envelope, CDR violating OCPI (reason schema_invalid)
    unknown_tariff         rejected    periods name a tariff never published, none embedded
                                       (reason no_tariff)
    no_agreement           rejected    CPO and eMSP without agreement or CPO default
                                       (reason no_agreement)

Originals always precede the records derived from them; otherwise the order is shuffled.
Modules: `config` (settings, categories), `plan` (counts, order), `partners`, `tariffs`,
`locations`, `agreements`, `reference` (reference data), `sessions` (timestamps and
volumes), `records` (wire CDRs, pricing, envelopes), `faults` (broken records),
`generator` (one record per category), `scenario` (the entry points).
"""

from pipeline.simulate.config import Category, CategoryShares, ScenarioConfig
from pipeline.simulate.generator import Submission
from pipeline.simulate.partners import Partner
from pipeline.simulate.plan import Expected, category_counts
from pipeline.simulate.reference import ReferenceData, build_reference
from pipeline.simulate.scenario import Scenario, generate_scenario, iter_submissions

__all__ = [
    "Category",
    "CategoryShares",
    "Expected",
    "Partner",
    "ReferenceData",
    "Scenario",
    "ScenarioConfig",
    "Submission",
    "build_reference",
    "category_counts",
    "generate_scenario",
    "iter_submissions",
]
