"""Settlement throughput: close N postings across 200 partners, export a 100,000-line CSV.

Everything happens in a scratch database created on the configured server and dropped at the
end (never the user's own database). The ledger is generated and loaded with COPY once into
a template database (not timed; triggers off while loading, as for a bulk restore), then
each run copies the template (``CREATE DATABASE … TEMPLATE``), times ``close_once`` and the
CSV export of the largest batch, and drops its copy. Figures are medians over the runs.

Workload: N/3 CDR transactions of 3 postings (eMSP debit, CPO credit, hub fee credit) in May
2025, amounts at 4 decimals (so most batches book a rounding transaction), partners settled
DAILY, WEEKLY or MONTHLY; partner NL*P00 is the CPO of up to 100,000 CDRs in one MONTHLY
batch, the one exported.
"""

from __future__ import annotations

import io
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg

from settlement.batches.model import ClosePolicy
from settlement.batches.seal import SealKey
from settlement.store.closing import close_once
from settlement.store.migrate import apply_migrations
from settlement.store.urls import with_database

PARTNERS: Final = 200
EXPORT_LINES_TARGET: Final = 100_000
POSTINGS_PER_TRANSACTION: Final = 3
KINDS: Final = ("DAILY", "WEEKLY", "MONTHLY")
MONTH_START: Final = datetime(2025, 5, 1, tzinfo=UTC)
AS_OF: Final = datetime(2025, 7, 1, tzinfo=UTC)
COPY_CHUNK_ROWS: Final = 20_000


@dataclass(frozen=True, slots=True)
class SettleBench:
    postings: int
    close_s: float
    export_lines: int
    export_s: float
    batches: int
    runs: int
    load_s: float


def partner_refs() -> list[str]:
    return [f"{'NL' if i < 100 else 'DE'}*P{i % 100:02d}" for i in range(PARTNERS)]


def _amount(units: int) -> str:
    return f"{units // 10_000}.{units % 10_000:04d}"


def generate(postings: int, seed: int = 7) -> Iterator[tuple[str, list[str]]]:
    """(ledger_transaction COPY line, its ledger_posting COPY lines), N/3 transactions."""
    rng = random.Random(seed)
    partners = partner_refs()
    kinds = {p: KINDS[i % 3] for i, p in enumerate(partners)}
    kinds[partners[0]] = "MONTHLY"
    transactions = postings // POSTINGS_PER_TRANSACTION
    big = min(EXPORT_LINES_TARGET, transactions // 3)
    for t in range(transactions):
        cpo = partners[0] if t < big else partners[rng.randrange(PARTNERS)]
        emsp = partners[(partners.index(cpo) + 1 + rng.randrange(PARTNERS - 1)) % PARTNERS]
        value_time = MONTH_START + timedelta(seconds=rng.randrange(31 * 86_400 - 3600))
        start, booked = value_time - timedelta(minutes=40), value_time + timedelta(minutes=5)
        amount = rng.randrange(500, 900_000)
        fee = max(1, amount * 15 // 1000)
        excl = amount * 100 // 121
        tid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        rating = (
            f'{{"vat_breakdown": [{{"vat": "21.0", "excl_vat": "{_amount(excl)}", '
            f'"incl_vat": "{_amount(amount)}"}}]}}'
        )
        kind = kinds[cpo]
        vt, bk = value_time.isoformat(), booked.isoformat()
        transaction = "\t".join(
            (
                tid,
                f"{cpo}*B{t}",
                "CHARGE",
                "0" * 64,
                "EUR",
                cpo,
                emsp,
                start.isoformat(),
                vt,
                f"LOC{t % 50}",
                "12.345",
                _amount(excl),
                _amount(amount),
                _amount(fee),
                rating,
                bk,
            )
        )
        lines = [
            f"{tid}\tpartner:{emsp}\tDEBIT\t{_amount(amount)}\tEUR\t{vt}\t{kind}\t{bk}",
            f"{tid}\tpartner:{cpo}\tCREDIT\t{_amount(amount - fee)}\tEUR\t{vt}\t{kind}\t{bk}",
            f"{tid}\thub:fees\tCREDIT\t{_amount(fee)}\tEUR\t{vt}\t{kind}\t{bk}",
        ]
        yield transaction, lines


def load(database_url: str, postings: int, progress: Callable[[int], None] | None = None) -> None:
    """COPY the generated ledger in (triggers off: a bulk restore, balanced by construction)."""
    tx_columns = (
        "transaction_id, cdr_key, kind, content_hash, currency, cpo, emsp, session_start, "
        "session_end, location_id, energy_kwh, amount_excl_vat, amount_incl_vat, fee, rating, "
        "booked_at"
    )
    posting_columns = (
        "transaction_id, account, side, amount, currency, value_time, settlement_period, booked_at"
    )
    with psycopg.connect(database_url) as conn:
        conn.execute("SET session_replication_role = replica")
        tx_buffer, posting_buffer = io.StringIO(), io.StringIO()
        written = 0

        def flush() -> None:
            with conn.cursor().copy(f"COPY ledger_transaction ({tx_columns}) FROM STDIN") as cp:
                cp.write(tx_buffer.getvalue())
            with conn.cursor().copy(f"COPY ledger_posting ({posting_columns}) FROM STDIN") as cp:
                cp.write(posting_buffer.getvalue())
            for buffer in (tx_buffer, posting_buffer):
                buffer.seek(0)
                buffer.truncate()

        for index, (transaction, lines) in enumerate(generate(postings), start=1):
            tx_buffer.write(transaction + "\n")
            posting_buffer.write("\n".join(lines) + "\n")
            written += len(lines)
            if index % COPY_CHUNK_ROWS == 0:
                flush()
                if progress is not None:
                    progress(written)
        flush()
        if progress is not None:
            progress(written)
        conn.commit()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE ledger_posting")
        conn.execute("VACUUM ANALYZE ledger_transaction")


def _largest_batch(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT batch_id FROM settlement_batch ORDER BY postings DESC LIMIT 1"
        ).fetchone()
    assert row is not None, "the close produced no batch"
    return int(row[0])


def _admin(server_url: str, sql: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql)


def run(
    server_url: str,
    seal_key: SealKey,
    postings: int = 1_000_000,
    runs: int = 3,
    export: Callable[[str, int], int] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> SettleBench:
    """Load once, then ``runs`` times: copy the template, time close and export, drop."""
    template = f"roamclear_bench_{uuid.uuid4().hex[:10]}"
    _admin(server_url, f'CREATE DATABASE "{template}"')
    copies: list[str] = []
    try:
        template_url = with_database(server_url, template)
        apply_migrations(template_url)
        started = time.perf_counter()
        load(template_url, postings, None if progress is None else lambda n: progress("load", n))
        load_s = time.perf_counter() - started
        close_times, export_times, lines, batches = [], [], 0, 0
        for index in range(runs):
            copy = f"{template}_r{index}"
            # yoyo keeps its migration connection open; the scratch template is ours alone
            _admin(
                server_url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{template}' AND pid <> pg_backend_pid()",
            )
            _admin(server_url, f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
            copies.append(copy)
            url = with_database(server_url, copy)
            started = time.perf_counter()
            report = close_once(url, AS_OF, ClosePolicy(), seal_key)
            close_times.append(time.perf_counter() - started)
            batches = len(report.batches)
            if export is not None:
                batch_id = _largest_batch(url)
                started = time.perf_counter()
                lines = export(url, batch_id)
                export_times.append(time.perf_counter() - started)
            _admin(server_url, f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
            copies.remove(copy)
            if progress is not None:
                progress("runs", index + 1)
    finally:
        for name in [*copies, template]:
            _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return SettleBench(
        postings=(postings // POSTINGS_PER_TRANSACTION) * POSTINGS_PER_TRANSACTION,
        close_s=statistics.median(close_times),
        export_lines=lines,
        export_s=statistics.median(export_times) if export_times else 0.0,
        batches=batches,
        runs=runs,
        load_s=load_s,
    )
