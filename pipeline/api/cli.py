"""``roamclear api``: serve the HTTP API (uvicorn) on 127.0.0.1.

    roamclear api [--port 8080] [--host 127.0.0.1]

The lead mounts it with ``api_cli.register(app)``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.console import error_console, fail
from pipeline.config import Settings
from pipeline.embedded import devstack
from pipeline.gctune import tune_gc
from pipeline.observe.logs import logging_config


def api(
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8080,
    host: Annotated[str, typer.Option("--host", help="bind address")] = "127.0.0.1",
) -> None:
    """Serve the hub's HTTP API: OCPI 2.2.1 for partners and the finance API (OpenAPI at
    /docs); SIGTERM stops it cleanly."""
    from pipeline.api.app import create_app
    from pipeline.api.serving import serve

    settings = devstack.resolve(Settings.from_env())
    try:
        app = create_app(settings)
    except ValueError as exc:  # the hub key, or settings that make no valid OCPI credentials
        raise fail(str(exc), 2) from None
    error_console.print(f"roamclear api on http://{host}:{port} (OpenAPI: /docs)")
    tune_gc()
    serve(app, host, port, "info", log_config=logging_config(settings, "INFO"))


def register(app: typer.Typer) -> None:
    app.command("api")(api)
