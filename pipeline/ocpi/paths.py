"""Where the hub's OCPI interface lives, in one module that imports nothing of the interface,
so a module's router (pipeline.ocpi.credentials, …) can name its path while
pipeline.ocpi.modules imports the routers to list them."""

from __future__ import annotations

from typing import Final

VERSION: Final = "2.2.1"
BASE_PATH: Final = "/ocpi"
VERSIONS_PATH: Final = f"{BASE_PATH}/versions"
VERSION_PATH: Final = f"{BASE_PATH}/{VERSION}"


def public_versions_url(public_url: str) -> str:
    """The hub's versions URL as partners reach it (ROAMCLEAR_PUBLIC_URL)."""
    return f"{public_url.rstrip('/')}{VERSIONS_PATH}"
