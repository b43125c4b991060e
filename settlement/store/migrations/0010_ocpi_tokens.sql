-- OCPI 2.2.1 credentials tokens that partners present to the hub (`Authorization: Token …`),
-- stored as sha256 only, and their revocations.
-- depends: 0009_roles
--
-- Kind A is the registration token the hub hands out of band (`roamclear partners invite`):
-- it opens only the versions and credentials endpoints. Kind C is the token the hub issues
-- in the credentials handshake: every module. A rotation (credentials PUT) issues a new C
-- and revokes the old one; a token is never changed or deleted.
CREATE TABLE ocpi_token (
    token_hash   text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    partner      text NOT NULL CHECK (partner ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    kind         text NOT NULL CHECK (kind IN ('A', 'C')),
    -- also accepted as sent, not base64-encoded (OCPI 2.1.1 and many 2.2 implementations)
    raw_allowed  boolean NOT NULL DEFAULT false,
    label        text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ocpi_token_partner ON ocpi_token (partner);

CREATE TABLE ocpi_token_revocation (
    token_hash  text PRIMARY KEY REFERENCES ocpi_token (token_hash),
    revoked_at  timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL DEFAULT '' CHECK (length(reason) <= 500)
);

-- a token belongs to a registered partner (the check partner keys use: 0006)
CREATE TRIGGER ocpi_token_registered BEFORE INSERT ON ocpi_token
    FOR EACH ROW EXECUTE FUNCTION partner_key_partner_registered();

CREATE TRIGGER ocpi_token_append_only BEFORE UPDATE OR DELETE ON ocpi_token
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ocpi_token_no_truncate BEFORE TRUNCATE ON ocpi_token
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ocpi_token_revocation_append_only BEFORE UPDATE OR DELETE ON ocpi_token_revocation
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ocpi_token_revocation_no_truncate BEFORE TRUNCATE ON ocpi_token_revocation
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
