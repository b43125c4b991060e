"""`roamclear topics create|list`: every topic made up front with its final partition count."""

from __future__ import annotations

import asyncio

import typer

from pipeline.cli.common import live_settings
from pipeline.cli.console import console, print_json
from pipeline.kafka.admin import create_topics, list_topics_async
from pipeline.topics import topic_specs

app = typer.Typer(help="Create and list roamclear's Kafka topics.")


@app.command()
def create(
    replication_factor: int = typer.Option(
        1, "--replication-factor", min=1, help="copies of each partition (3 on three brokers)"
    ),
    json_output: bool = typer.Option(False, "--json", help="machine-readable"),
) -> None:
    """Create every missing topic (idempotent: an existing topic is left as it is)."""
    settings = live_settings()
    assert settings.kafka_bootstrap_servers is not None
    specs = topic_specs(settings.topic_prefix, replication_factor)
    created = create_topics(settings.kafka_bootstrap_servers, specs)
    if json_output:
        print_json({"created": created})
    else:
        console.print(f"created {len(created)} topic(s): {', '.join(created) or '-'}")


@app.command("list")
def list_(json_output: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """List the topics on the broker."""
    settings = live_settings()
    assert settings.kafka_bootstrap_servers is not None
    names = asyncio.run(list_topics_async(settings.kafka_bootstrap_servers))
    if json_output:
        print_json(names)
    else:
        for name in names:
            console.print(name)
