-- `roamclear trace` (settlement/store/trace.py) finds a CDR's records by index, not by a scan
-- of the whole archive.
-- depends: 0017_hub_client_info
--
-- A booked record is found from its transaction (ledger_transaction.archive_id); an exact
-- duplicate only through cdr_outcome.transaction_id, and a rejection only through
-- rejection.cdr_key, neither indexed until now. The outcome index is partial: duplicates
-- are few, so the clearing's hot path (one outcome row per record) pays for no index entry
-- on a booked or rejected record. No grant changes: the reader and API roles already SELECT
-- every table (post-apply.sql).
CREATE INDEX cdr_outcome_duplicate_of ON cdr_outcome (transaction_id) WHERE outcome = 'DUPLICATE';
CREATE INDEX rejection_cdr_key ON rejection (cdr_key) WHERE cdr_key IS NOT NULL;
