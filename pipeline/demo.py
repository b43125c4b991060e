"""`roamclear demo`: the hub end to end on the embedded default, one step after another.

Each step prints what it did as a table. The stack is started if it is not running, and
stopped again at the end unless it was running before (or `--keep` is given).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

import psycopg
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from pipeline import reference
from pipeline.cli.rate import explain_table
from pipeline.cli.settle import policy_from_env
from pipeline.cli.simulate import answers_table
from pipeline.config import Settings
from pipeline.dbroles import DbRole, role_url
from pipeline.delivery.watch import wait_for_deliveries
from pipeline.demo_ops import step_ops
from pipeline.embedded import devstack
from pipeline.hubkeys import hub_signer, load_seal_keys
from pipeline.kafka.admin import create_topics
from pipeline.kafka.client import read_from_beginning, records_in_topic
from pipeline.publish import cdr_record, publish_records
from pipeline.simulate import Category, ScenarioConfig, build_reference, category_counts
from pipeline.simulate.over_http import HttpExpected, simulated_partners
from pipeline.simulate.platform import PartnerPlatforms
from pipeline.simulate.scenario import iter_submissions
from pipeline.simulate.send import send_stream
from pipeline.simulate.via_http import HttpRun, hub_api, send_over_http
from pipeline.topics import Topic, topic_name, topic_specs
from pipeline.workers import DELIVER_COMMAND, WorkerGroup, worker_processes
from schemas.base import loads_exact
from schemas.events import CdrSubmitted, parse_envelope
from schemas.hub.party import PartnerRole, PartyRef
from schemas.ocpi.cdr import Cdr
from schemas.validation import parse_agreement, parse_location, parse_tariff
from settlement.rating import rate_cdr
from settlement.sessions.missing import FindingKind
from settlement.statements.pdf import render_pdf
from settlement.store import books, deliveries
from settlement.store.closing import close_once
from settlement.store.db import connect
from settlement.store.migrate import apply_migrations
from settlement.store.missing_cdrs import missing_cdrs
from settlement.store.statements import iter_statements, load_statement
from settlement.store.statements_csv import export_csv
from settlement.store.urls import redacted, with_database

SAMPLE_CDRS = "cdrs_nl_tnm.json"
DEMO_DATABASE = "roamclear_demo"
DEMO_CDRS = 5_000  # simulated CDRs cleared by the demo (a few seconds of work)
CLEARING_WAIT_S_MAX = 600.0


def sample_cdrs() -> list[Cdr]:
    raw = resources.files("pipeline.samples").joinpath(SAMPLE_CDRS).read_bytes()
    return [Cdr.model_validate(item) for item in loads_exact(raw)]


@contextmanager
def demo_stack(settings: Settings, keep: bool, console: Console) -> Iterator[Settings]:
    """Servers for the demo, with a database and topics of its own, recreated every run, so
    a second run shows the same books. Stops the embedded stack it started unless `keep`."""
    started = False
    if not (settings.kafka_bootstrap_servers and settings.database_url):
        with console.status("starting the embedded broker and PostgreSQL…"):
            stack = devstack.up(settings)
        for notice in stack.notices:
            console.print(f"[yellow]warning:[/] {notice}", highlight=False, soft_wrap=True)
        started = stack.fresh()
        settings = settings.with_servers(stack.bootstrap_servers, stack.database_url)
    assert settings.database_url is not None and settings.kafka_bootstrap_servers is not None
    demo_url = with_database(settings.database_url, DEMO_DATABASE)
    with psycopg.connect(settings.database_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    apply_migrations(demo_url)
    live = replace(settings, database_url=demo_url, topic_prefix=f"demo{int(time.time())}")
    create_topics(settings.kafka_bootstrap_servers, topic_specs(live.topic_prefix))
    console.print(
        f"[bold]broker[/] {settings.kafka_bootstrap_servers}   "
        f"[bold]PostgreSQL[/] {redacted(demo_url)}"
        f"   [bold]topics[/] {live.topic_prefix}.*",
        soft_wrap=True,
    )
    try:
        yield live
    finally:
        if started and not keep:
            devstack.down(settings)
            console.print("[dim]stopped the embedded stack (use --keep to leave it running)[/]")
        elif keep:  # a configured password stays hidden in what it suggests
            console.print(
                "inspect the demo's books with:\n"
                f"  export KAFKA_BOOTSTRAP_SERVERS='{settings.kafka_bootstrap_servers}'\n"
                f"  export DATABASE_URL='{redacted(demo_url)}'\n"
                f"  export ROAMCLEAR_TOPIC_PREFIX='{live.topic_prefix}'",
                soft_wrap=True,
                highlight=False,
            )


def step_submit(settings: Settings, cdrs: Sequence[Cdr], console: Console) -> list[CdrSubmitted]:
    """Publish the CDRs to cdr.submitted and read them back from the broker."""
    assert settings.kafka_bootstrap_servers is not None
    topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
    records = [cdr_record(cdr) for cdr in cdrs]
    sent_ids = {parse_envelope(value).event_id for _, value in records}
    values = {value for _, value in records}
    sign = hub_signer(settings)
    asyncio.run(publish_records(settings.kafka_bootstrap_servers, topic, records, sign))
    keys = {key for key, _ in records}
    received = asyncio.run(
        read_from_beginning(
            settings.kafka_bootstrap_servers,
            topic,
            count=100_000,
            timeout_s=30,
            until=lambda got: keys <= {r.key for r in got if r.value in values},
        )
    )
    envelopes = []
    table = Table(title=f"read back from {topic}", title_justify="left")
    for column in ("partition", "offset", "key", "session start", "energy kWh", "declared total"):
        table.add_column(column, justify="right" if column[0] in "poed" else "left", no_wrap=True)
    for record in received:
        assert record.value is not None
        envelope = parse_envelope(record.value)
        if envelope.event_id not in sent_ids or not isinstance(envelope, CdrSubmitted):
            continue  # an earlier run's events on a stack that was left running
        envelopes.append(envelope)
        cdr = envelope.cdr
        table.add_row(
            str(record.partition),
            str(record.offset),
            (record.key or b"").decode(),
            f"{cdr.start_date_time:%Y-%m-%d %H:%M}Z",
            str(cdr.total_energy),
            f"{cdr.total_cost.excl_vat} {cdr.currency}",
        )
    console.print(table)
    console.print(f"published {len(records)} CDRs, read back {len(envelopes)}")
    if len(envelopes) != len(records):
        raise RuntimeError(f"sent {len(records)} CDRs but read back {len(envelopes)}")
    return envelopes


def step_rate(envelopes: Sequence[CdrSubmitted], console: Console) -> None:
    """Price every CDR read back against its tariff; explain the priciest one."""
    table = Table(title="hub price vs CPO-declared total", title_justify="left")
    for column in ("CDR", "tariff", "zone", "hub excl VAT", "hub incl VAT", "declared", "check"):
        table.add_column(column, justify="right" if "VAT" in column else "left", no_wrap=True)
    rated = []
    for envelope in envelopes:
        result = rate_cdr(envelope.cdr)
        rated.append(result)
        within = result.comparison.within_tolerance
        table.add_row(
            envelope.cdr.id,
            f"{result.tariff.id} ({result.tariff.content_hash[:8]})",
            result.time_zone or "-",
            str(result.totals.total_cost.excl_vat),
            str(result.totals.total_cost.incl_vat),
            f"{envelope.cdr.total_cost.excl_vat} / {envelope.cdr.total_cost.incl_vat}",
            "[green]matches[/]" if within else "[red]differs[/]",
        )
    console.print(table)
    priciest = max(rated, key=lambda r: r.totals.total_cost.excl_vat)
    console.print(explain_table(priciest))


def register_samples(settings: Settings) -> None:
    """The sample CPO, its eMSPs, tariff, location and default agreement."""
    files = resources.files("pipeline.samples")

    def read(name: str) -> object:
        return loads_exact(files.joinpath(name).read_bytes())

    reference.add_partners(
        settings,
        [
            (PartyRef.parse("NL*TNM"), PartnerRole.CPO, "TNM Charging"),
            (PartyRef.parse("DE*EMP"), PartnerRole.EMSP, "EMP Mobility"),
            (PartyRef.parse("BE*EVB"), PartnerRole.EMSP, "EVB Roaming"),
        ],
    )
    reference.publish_tariffs(settings, [parse_tariff(read("tariff_nl_tnm_ac.json"))])  # type: ignore[arg-type]
    reference.publish_locations(settings, [parse_location(read("location_nl_tnm_ams.json"))])  # type: ignore[arg-type]
    reference.publish_agreements(
        settings,
        [parse_agreement(read("agreement_nl_tnm_default.json"))],  # type: ignore[arg-type]
    )


def step_clear(settings: Settings, cdrs: int, console: Console) -> None:
    """Simulated partners connect over OCPI and send their traffic; a clearing worker books
    it; check the books against what was sent."""
    assert settings.database_url is not None and settings.kafka_bootstrap_servers is not None
    register_samples(settings)
    config = ScenarioConfig(cdrs=cdrs, seed=2026)
    data = build_reference(config)
    with PartnerPlatforms(simulated_partners(data)) as platforms:
        with Progress(
            *Progress.get_default_columns(), MofNCompleteColumn(), console=console
        ) as bar:
            task = bar.add_task("partners over OCPI", total=cdrs)
            with hub_api(settings, None, settings.home) as hub_url:
                run = send_over_http(
                    settings,
                    hub_url,
                    data,
                    iter_submissions(config, data),
                    lambda n: bar.advance(task, n),
                    platforms,
                )
        console.print(
            f"{run.partners} simulated partners connected through the credentials handshake "
            f"(each called back on its own OCPI platform); CPOs PUT {run.reference_pushed} "
            f"tariffs and locations, {run.tally.sessions_put:,} sessions (PUT, then PATCH when "
            f"done) and {run.tally.posted:,} CDRs (POST); {run.tally.throttled[0]:,} requests "
            "beyond a partner's rate were answered 429 and sent again after their Retry-After"
        )
        console.print(answers_table(run.tally))
        # a bare Kafka client writing in a CPO's name: no proof, so clearing refuses it
        forged = [s for s in iter_submissions(config, data) if s.category is Category.FORGED]
        asyncio.run(send_stream(settings, forged))
        topic = topic_name(settings.topic_prefix, Topic.CDR_SUBMITTED)
        with (
            console.status("a clearing worker and a deliverer are starting…"),
            worker_processes(settings, 1, settings.home) as group,
            worker_processes(
                settings, 1, settings.home, command=DELIVER_COMMAND, name="deliver"
            ) as deliverers,
        ):
            wait_for_books(settings, topic, console, group)
            wait_for_sessions(settings, 2 * run.tally.sessions_put, group)
            per_state = wait_for_deliveries(settings, console, deliverers)
        check_books(settings, topic, config, run, len(forged), console)
        check_deliveries(settings, platforms, per_state, console)


def check_deliveries(
    settings: Settings, platforms: PartnerPlatforms, per_state: dict[str, int], console: Console
) -> None:
    """Every booked CDR reached its eMSP's platform exactly once (or is kept for an eMSP
    that pulls); none is dead."""
    with connect(role_url(settings, DbRole.READER)) as conn:
        delivered = deliveries.delivered_keys(conn)
        retried = deliveries.retried_then_delivered(conn)
    table = Table("delivered", "retrying", "dead", "kept for pull", title="CDR deliveries to eMSPs")
    table.add_row(*(f"{per_state[k]:,}" for k in ("DELIVERED", "RETRYING", "DEAD", "PULL")))
    console.print(table)
    # CDR keys are canonical (upper case); the CDRs the platforms got keep the CPO's ids
    expected = Counter((emsp.replace("*", ""), key.split("*", 2)[2]) for emsp, key in delivered)
    received = Counter(
        {(emsp, cdr_id.upper()): n for (emsp, cdr_id), n in platforms.cdr_ids.items()}
    )
    once = expected == received
    console.print(
        f"{len(delivered):,} CDRs (and credits) POSTed to the eMSPs' OCPI platforms, "
        f"{retried:,} of them after a 503 the first time (retried with backoff); each eMSP "
        f"received each of its CDRs exactly once: {'[green]yes[/]' if once else '[red]no[/]'}",
        highlight=False,
    )
    if not once:
        console.print(
            f"not received: {sorted(expected - received)[:5]}; "
            f"received more than once or not delivered: {sorted(received - expected)[:5]}",
            highlight=False,
        )
    if not once or per_state["DEAD"] or per_state["RETRYING"] or per_state["PENDING"]:
        raise RuntimeError("the deliveries do not add up")


def check_books(
    settings: Settings,
    topic: str,
    config: ScenarioConfig,
    run: HttpRun,
    forged_on_kafka: int,
    console: Console,
) -> None:
    """The books against what the partners sent: invariant 2, the HTTP counts, the refusals,
    the missing CDRs, and balances that sum to zero."""
    assert settings.kafka_bootstrap_servers is not None
    with connect(role_url(settings, DbRole.READER)) as conn:
        in_topic = asyncio.run(records_in_topic(settings.kafka_bootstrap_servers, topic))
        counts = books.counts(conn, topic, in_topic)
        http = books.ingest_counts(conn)
        balances = books.balances(conn)
        reasons = books.rejections_by_reason(conn)
        missing = missing_cdrs(conn, datetime.now(UTC), settings.session_stale_h)
    table = Table("submitted", "ledgered", "rejected", "duplicates", "pending", title="the books")
    table.add_row(
        *(f"{counts[k]:,}" for k in ("submitted", "ledgered", "rejected", "duplicates", "pending"))
    )
    console.print(table)
    decided = counts["ledgered"] + counts["rejected"] + counts["duplicates"]
    holds = counts["pending"] == 0 and decided == counts["submitted"]
    console.print(
        f"invariant 2 {'[green]holds[/]' if holds else '[red]BROKEN[/]'}: submitted "
        f"{counts['submitted']:,} = ledgered {counts['ledgered']:,} + rejected "
        f"{counts['rejected']:,} + duplicates {counts['duplicates']:,}"
    )
    console.print(
        f"over OCPI HTTP: received {http['received_http']:,} = accepted "
        f"{http['accepted_http']:,} + duplicates {http['duplicates_http']:,} + rejected at the "
        f"door {http['rejected_at_ingest']:,} (every one kept: `roamclear rejected list`)",
        highlight=False,
    )
    console.print(
        "rejected, by reason: " + ", ".join(f"{r} {n:,}" for r, n in reasons.items()),
        highlight=False,
    )
    expected = HttpExpected.of(category_counts(config))
    forged_http = run.tally.answers[Category.FORGED.value]
    console.print(
        f"forged: {sum(forged_http.values()):,} POSTed with another CPO's token, answered "
        f"{', '.join(sorted(forged_http))}; {forged_on_kafka:,} produced to Kafka without "
        f"proof, refused as unauthenticated_submitter "
        f"{reasons.get('unauthenticated_submitter', 0):,}",
        highlight=False,
    )
    missing_count = sum(1 for f in missing if f.kind is FindingKind.MISSING_CDR)
    console.print(
        f"sessions whose CDR never came: {run.tally.sessions_without_cdr:,} sent, "
        f"{missing_count:,} listed by `roamclear sessions missing-cdrs`"
    )
    # the three sample CDRs of step 1 are on the topic too, and book as charges
    matches = (
        http["received_http"] == expected.received_http
        and http["accepted_http"] == expected.accepted_http
        and http["duplicates_http"] == expected.duplicates_http
        and http["rejected_at_ingest"] == expected.rejected_at_ingest
        and http["unpublished_http"] == 0
        and reasons.get("unauthenticated_submitter", 0) == forged_on_kafka
        and counts["ledgered"] == expected.ledgered + 3
        and counts["rejected"] == expected.rejected + forged_on_kafka
        and counts["duplicates"] == 0
        and missing_count == run.tally.sessions_without_cdr
    )
    console.print(
        "outcomes match what the simulated partners sent: "
        + ("[green]yes[/]" if matches else f"[red]no[/] (expected {expected})")
    )
    top = sorted(balances, key=lambda b: abs(b["balance"]), reverse=True)[:8]
    table = Table(
        "account", "currency", "balance", "postings", title="top balances (+: the hub owes)"
    )
    for row in top:
        table.add_row(
            row["account"], row["currency"], f"{row['balance']:,}", f"{row['postings']:,}"
        )
    console.print(table)
    total = sum(b["balance"] for b in balances)
    console.print(f"sum of all balances: {total} (every transaction balances)")
    if not (holds and matches and total == 0):
        raise RuntimeError("the books do not add up")


def wait_for_sessions(settings: Settings, versions: int, group: WorkerGroup) -> None:
    """Until the session agent has recorded every session update the partners sent."""
    deadline = time.monotonic() + CLEARING_WAIT_S_MAX
    while time.monotonic() < deadline:
        with connect(role_url(settings, DbRole.READER)) as conn:
            row = conn.execute("SELECT count(*) AS n FROM session_version").fetchone()
        if row is not None and row["n"] >= versions:
            return
        group.check_alive()
        time.sleep(0.5)
    raise TimeoutError("the session agent did not record every session update in time")


def wait_for_books(settings: Settings, topic: str, console: Console, group: WorkerGroup) -> None:
    assert settings.database_url is not None and settings.kafka_bootstrap_servers is not None
    in_topic = asyncio.run(records_in_topic(settings.kafka_bootstrap_servers, topic))
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("clearing", total=in_topic)
        deadline = time.monotonic() + CLEARING_WAIT_S_MAX
        while time.monotonic() < deadline:
            with connect(role_url(settings, DbRole.READER)) as conn:
                counts = books.counts(conn, topic, in_topic)
            bar.update(task, completed=in_topic - counts["pending"])
            if counts["pending"] == 0:
                return
            group.check_alive()
            time.sleep(0.5)
    raise TimeoutError("the worker did not clear every CDR in time")


def step_settle(settings: Settings, console: Console, out_dir: Path) -> None:
    """Close every ended period, write each statement as CSV and PDF, print net positions."""
    assert settings.database_url is not None
    keys = load_seal_keys(settings)
    closer = role_url(settings, DbRole.CLOSER)
    report = close_once(closer, datetime.now(UTC), policy_from_env(), keys.current)
    console.print(
        f"closed {len(report.batches):,} batches over {report.postings:,} postings "
        f"in {report.duration_s:.2f} s"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    with connect(role_url(settings, DbRole.READER)) as conn:
        summaries = list(iter_statements(conn, keys))
        with Progress(
            *Progress.get_default_columns(), MofNCompleteColumn(), console=console
        ) as bar:
            task = bar.add_task("writing statements", total=len(summaries))
            for summary in summaries:
                stem = out_dir / (
                    f"statement-{summary.batch_id:05d}-{summary.partner.replace('*', '')}-"
                    f"{summary.period_kind.lower()}-{summary.period_start:%Y%m%d}"
                )
                with stem.with_suffix(".csv").open("w", newline="") as csv_file:
                    export_csv(conn, summary.batch_id, csv_file)
                stem.with_suffix(".pdf").write_bytes(
                    render_pdf(load_statement(conn, summary.batch_id))
                )
                bar.advance(task)
    positions: dict[tuple[str, str], Decimal] = {}
    for summary in summaries:
        key = (summary.partner, summary.currency)
        positions[key] = positions.get(key, Decimal(0)) + summary.net_amount
    table = Table(
        "partner", "currency", "net over all closed periods", "direction", title="net positions"
    )
    for (partner, currency), net in sorted(positions.items(), key=lambda item: -abs(item[1])):
        direction = "hub pays partner" if net > 0 else "partner pays hub" if net < 0 else "-"
        table.add_row(partner, currency, f"{net:,}", direction)
    console.print(table)
    console.print(f"{len(summaries) * 2:,} statement files (CSV and PDF) in {out_dir}/")


def run(settings: Settings, keep: bool, console: Console, cdrs: int = DEMO_CDRS) -> None:
    samples = sample_cdrs()
    with demo_stack(settings, keep, console) as live:
        console.rule("1. submit CDRs to the hub")
        second = timedelta(seconds=1)  # the sample CDRs' broker times, in whole seconds
        submitted_from = datetime.now(UTC).replace(microsecond=0) - second
        envelopes = step_submit(live, samples, console)
        submitted = (submitted_from, datetime.now(UTC).replace(microsecond=0) + second)
        console.rule("2. price them against the CPO's tariff (OCPI 2.2.1 semantics)")
        step_rate(envelopes, console)
        console.rule("3. partners connect over OCPI 2.2.1 and send their traffic; clear it")
        step_clear(live, cdrs, console)
        console.rule("4. close settlement batches and write the statements")
        step_settle(live, console, Path("out"))
        console.rule("5. ops: trace a CDR, settle a dispute, replay a tariff correction")
        step_ops(live, submitted, console)
