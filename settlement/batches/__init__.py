"""Settlement batches: periods, the closer's rules, rounding, checksums and the lifecycle.

Pure functions over frozen values; the PostgreSQL closer (settlement/store/closing.py)
implements the same rules in SQL, and property tests hold both to them.
"""
