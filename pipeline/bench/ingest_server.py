"""The API process `roamclear bench ingest` measures: the app `roamclear api` serves, served as
it serves it (pipeline.api.serving: uvicorn, uvloop, httptools, one write per answer) but
without the access log, plus `GET /ocpi/2.2.1/bench-noop`, an
authenticated no-op that does for a request exactly what the CDR POST does before it reads
the body (the same way in, the cached token check, the partner's rate bucket), so the two
rates compare the ingest work alone.

    python -m pipeline.bench.ingest_server --port 8099
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI, Request
from fastapi.responses import Response

from pipeline.api.app import create_app
from pipeline.api.serving import serve
from pipeline.bench.ingest import NOOP_PATH
from pipeline.config import Settings
from pipeline.embedded import devstack
from pipeline.gctune import tune_gc
from pipeline.ocpi.auth import cached_ocpi_caller
from pipeline.ocpi.cdrs import rate_limited
from pipeline.ocpi.envelope import ocpi_response


def bench_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    async def noop(request: Request) -> Response:
        caller = await cached_ocpi_caller(request)
        return rate_limited(request, caller) or ocpi_response()

    # through the lane the CDR POST takes (pipeline.ocpi.fastlane), so the two rates differ
    # by the ingest work alone
    app.state.fast_lane[("GET", NOOP_PATH)] = noop
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    app = bench_app(devstack.resolve(Settings.from_env()))
    tune_gc()  # as `roamclear api` does
    # as `roamclear api` serves it, without the access log (a line per request)
    serve(app, "127.0.0.1", port, "warning", access_log=False)


if __name__ == "__main__":
    main()
