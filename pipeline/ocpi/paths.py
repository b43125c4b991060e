"""Where the OCPI interface lives under the app: the paths every OCPI router builds on.

Apart from `modules` so that a module's router can import them while `modules` imports the
routers (`modules` re-exports them).
"""

from __future__ import annotations

from typing import Final

VERSION: Final = "2.2.1"
BASE_PATH: Final = "/ocpi"
VERSION_PATH: Final = f"{BASE_PATH}/{VERSION}"
