-- Finance API tokens: an optional expiry, revocation as a row of its own, and partner tokens
-- only for registered partners.
-- depends: 0004_archive_storage
--
-- Tokens stay append-only: a token is never updated or deleted; it ends by expiring or by a
-- revocation row, so the table keeps who could read what, and until when.
ALTER TABLE finance_api_token
    ADD COLUMN expires_at timestamptz,
    ADD CONSTRAINT finance_api_token_expires_after_creation
        CHECK (expires_at IS NULL OR expires_at > created_at),
    -- NOT VALID: tokens made before this migration are not checked, every new one is
    ADD CONSTRAINT finance_api_token_partner_registered
        FOREIGN KEY (partner) REFERENCES partner (party_ref) NOT VALID;
CREATE TRIGGER finance_api_token_no_delete BEFORE DELETE ON finance_api_token
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER finance_api_token_no_truncate BEFORE TRUNCATE ON finance_api_token
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

CREATE TABLE finance_api_token_revocation (
    token_hash  text PRIMARY KEY REFERENCES finance_api_token (token_hash),
    revoked_at  timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL DEFAULT '' CHECK (length(reason) <= 500)
);
CREATE TRIGGER finance_api_token_revocation_append_only
    BEFORE UPDATE OR DELETE ON finance_api_token_revocation
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER finance_api_token_revocation_no_truncate
    BEFORE TRUNCATE ON finance_api_token_revocation
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
