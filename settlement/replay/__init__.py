"""Shadow replay: archived records decided again by the core's batch decision with chosen
reference data, each compared with what the hub booked (nothing is written).

- settlement.replay.model: the archived record and its original outcome, the verdicts;
- settlement.replay.compare: one record's original outcome against its replayed one;
- settlement.replay.run: the replay itself (the worker's `decide_batch`, batch by batch);
- settlement.replay.report: totals per partner and currency, JSON and CSV rows.
"""
