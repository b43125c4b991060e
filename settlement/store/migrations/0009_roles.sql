-- Least privilege: the roles each component connects as are created and granted by
-- post-apply.sql (re-run after every migration); this file holds the one function they need.
-- depends: 0006_submitter_proof 0007_statement_seal 0008_finance_tokens
--
-- The closer must hold new postings back while it takes its watermark (closing.py step 1):
-- LOCK TABLE ... IN SHARE ROW EXCLUSIVE MODE, which PostgreSQL allows only to a role with
-- UPDATE, DELETE or TRUNCATE on the table. The closer gets none of those on the ledger: it
-- gets this function, which takes that one lock as the owner and does nothing else. The lock
-- is held until the caller's transaction ends.
CREATE FUNCTION settlement_lock_postings() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    LOCK TABLE public.ledger_posting IN SHARE ROW EXCLUSIVE MODE;
END;
$$;
REVOKE ALL ON FUNCTION settlement_lock_postings() FROM PUBLIC;
