"""Clearing: from a submitted CDR to a balanced ledger transaction or a reasoned rejection.

The pure core of the clearing agent, and the whole clearing decision. `batch.decide_batch`
takes a batch of decoded records, the time, the limits, the hub's proof keys, the reference
data and what the ledger already holds for their keys, and returns one decision per record:
booked (with its ledger entry: entry.py, trace.py), an exact duplicate, or rejected with a
reason code. Per record it authenticates the submitter (proof.py) and decides the CDR
(decide.py: validate, dedupe, rate, allocate, book). No I/O happens here: the agent
(pipeline/clearing) reads the inputs and writes the outputs.
"""
