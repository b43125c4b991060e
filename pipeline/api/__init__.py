"""roamclear's HTTP API (FastAPI): the finance API for statements; ``create_app(settings)``."""
