"""Benchmarks behind ``roamclear bench``: figures printed, no pass/fail (``make bench``)."""
