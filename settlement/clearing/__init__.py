"""Clearing: from a submitted CDR to a balanced ledger transaction or a reasoned rejection.

The pure core of the clearing agent. `decide.clear(...)` takes one decoded CDR, the
reference data that applies to it and what the ledger already holds for its key, and returns
either a transaction to book or a rejection with a reason code. No I/O happens here: the
agent (pipeline/agents) loads the inputs and writes the outputs.
"""
