-- Append-only everywhere it is promised: every version of reference data is kept (a partner
-- change becomes a new version), and no append-only table can be emptied with TRUNCATE.
-- depends: 0004_archive_storage
--
-- Row triggers do not fire on TRUNCATE, so until now `TRUNCATE cdr_outcome` or
-- `TRUNCATE rejection CASCADE` wiped every outcome (invariant 2 could never be shown again).
-- tests/integration/test_table_rules.py enumerates every table and holds it to its rule.

-- Partners: a version per change (role or name), the newest one in force. `partner` stays
-- the name readers use: a view of each party's newest version.
ALTER TABLE partner RENAME TO partner_version;
ALTER TABLE partner_version ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);
ALTER TABLE partner_version ALTER COLUMN version DROP DEFAULT;
ALTER TABLE partner_version DROP CONSTRAINT partner_pkey;
ALTER TABLE partner_version ADD CONSTRAINT partner_version_pkey PRIMARY KEY (party_ref, version);
CREATE VIEW partner AS
    SELECT DISTINCT ON (party_ref) party_ref, role, name, version, created_at
      FROM partner_version
     ORDER BY party_ref, version DESC;

CREATE TRIGGER partner_version_append_only BEFORE UPDATE OR DELETE ON partner_version
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER tariff_version_append_only BEFORE UPDATE OR DELETE ON tariff_version
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER agreement_version_append_only BEFORE UPDATE OR DELETE ON agreement_version
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER location_version_append_only BEFORE UPDATE OR DELETE ON location_version
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER rejection_retry_append_only BEFORE UPDATE OR DELETE ON rejection_retry
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TRIGGER partner_version_no_truncate BEFORE TRUNCATE ON partner_version
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER tariff_version_no_truncate BEFORE TRUNCATE ON tariff_version
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER agreement_version_no_truncate BEFORE TRUNCATE ON agreement_version
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER location_version_no_truncate BEFORE TRUNCATE ON location_version
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER raw_event_no_truncate BEFORE TRUNCATE ON raw_event
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER rejection_no_truncate BEFORE TRUNCATE ON rejection
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER rejection_retry_no_truncate BEFORE TRUNCATE ON rejection_retry
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER cdr_outcome_no_truncate BEFORE TRUNCATE ON cdr_outcome
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Finance API tokens: never deleted (a token is revoked by a revocation, not by erasure).
CREATE TRIGGER finance_api_token_no_delete BEFORE DELETE ON finance_api_token
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER finance_api_token_no_truncate BEFORE TRUNCATE ON finance_api_token
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
