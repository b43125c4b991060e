"""The demo's tariff correction: a new version of the sample tariff that moves the sample
CDRs' price yet stays within the sample agreement's tolerance (else the replay would show
`now_rejected price_discrepancy` and book nothing)."""

from decimal import Decimal

from pipeline.demo import sample_cdrs
from pipeline.demo_replay import CORRECTED_FROM, START_FEE, corrected_tariff
from settlement.rating import rate_cdr

SAMPLE_TOLERANCE = Decimal("0.01")  # pipeline/samples/agreement_nl_tnm_default.json


def test_the_correction_changes_the_price_within_the_agreement_tolerance() -> None:
    tariff = corrected_tariff()
    assert tariff.last_updated.isoformat().startswith(CORRECTED_FROM[:19])
    for cdr in sample_cdrs():
        rated = rate_cdr(cdr, tariff, tolerance=SAMPLE_TOLERANCE)
        moved = rated.totals.total_cost.excl_vat - cdr.total_cost.excl_vat
        assert moved == START_FEE - Decimal("0.50")
        assert rated.comparison.within_tolerance, rated.comparison
