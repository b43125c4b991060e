"""One tariff hash: stored tariff versions get the hash every booking records
(settlement/store/tariff_rehash.py says how and why; docs/clearing.md, "Tracing a booking to
its tariff version"). Not reversible: the old hash is no longer defined anywhere."""

from yoyo import step

from settlement.store.tariff_rehash import rehash_tariff_versions

__depends__ = {"0014_ocpi_reference"}

steps = [step(rehash_tariff_versions)]
