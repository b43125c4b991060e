-- Proof of the submitter (settlement/clearing/proof.py): partners' registered public keys,
-- their revocations, and which key proved each decided record.
-- depends: 0005_append_only

-- Ed25519 public keys only: the private key stays with the partner, so reading this table is
-- not enough to sign in a partner's name.
CREATE TABLE partner_key (
    key_id      text PRIMARY KEY CHECK (key_id ~ '^pk-[0-9a-f]{12}$'),
    partner     text NOT NULL CHECK (partner ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    algorithm   text NOT NULL CHECK (algorithm = 'ed25519'),
    public_key  bytea NOT NULL UNIQUE CHECK (length(public_key) = 32),
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX partner_key_partner ON partner_key (partner);

-- A key is refused for records decided from `revoked_at` on (now, or a moment chosen for a
-- rollover). One revocation per key; a revoked key is never reinstated (register a new one).
CREATE TABLE partner_key_revocation (
    key_id      text PRIMARY KEY REFERENCES partner_key (key_id),
    revoked_at  timestamptz NOT NULL,
    reason      text NOT NULL DEFAULT '',
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- A key belongs to a registered partner (partner is a view, so no foreign key can say it).
CREATE FUNCTION partner_key_partner_registered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM partner_version WHERE party_ref = NEW.partner) THEN
        RAISE EXCEPTION 'partner % is not registered (roamclear partners add)', NEW.partner
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER partner_key_registered BEFORE INSERT ON partner_key
    FOR EACH ROW EXECUTE FUNCTION partner_key_partner_registered();

CREATE TRIGGER partner_key_append_only BEFORE UPDATE OR DELETE ON partner_key
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER partner_key_no_truncate BEFORE TRUNCATE ON partner_key
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER partner_key_revocation_append_only BEFORE UPDATE OR DELETE
    ON partner_key_revocation FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER partner_key_revocation_no_truncate BEFORE TRUNCATE ON partner_key_revocation
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The key that proved the record's submitter: `hub-…` (the hub vouched), `pk-…` (a partner
-- key). NULL: no valid proof (rejected unauthenticated_submitter), or decided before proofs.
ALTER TABLE cdr_outcome ADD COLUMN proof text
    CHECK (proof IS NULL OR proof ~ '^(hub|pk)-[0-9a-f]{12}$');
