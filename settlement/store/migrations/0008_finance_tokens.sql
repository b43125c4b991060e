-- Finance API tokens: an optional expiry, revocation as a row of its own, and partner tokens
-- only for registered partners.
-- depends: 0005_append_only
--
-- Tokens stay append-only (0005 refuses DELETE and TRUNCATE, 0003 UPDATE): a token ends by
-- expiring or by a revocation row, so the table keeps who could read what, and until when.
ALTER TABLE finance_api_token
    ADD COLUMN expires_at timestamptz,
    ADD CONSTRAINT finance_api_token_expires_after_creation
        CHECK (expires_at IS NULL OR expires_at > created_at);

-- A partner token names a registered partner (partner is a view of partner_version since
-- 0005, so no foreign key can say it). Tokens made before this migration are not checked.
CREATE FUNCTION finance_api_token_partner_registered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.partner IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM partner_version WHERE party_ref = NEW.partner) THEN
        RAISE EXCEPTION 'partner % is not registered (roamclear partners add)', NEW.partner
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER finance_api_token_partner_registered BEFORE INSERT ON finance_api_token
    FOR EACH ROW EXECUTE FUNCTION finance_api_token_partner_registered();

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
