-- OCPI 2.2.1 connections: what each credentials handshake established, one row per event.
-- depends: 0010_ocpi_tokens
--
-- A partner's connection is the history of its rows (seq 1, 2, …): REGISTERED (a credentials
-- POST, or `partners connect` from the hub's side), UPDATED (a credentials PUT: endpoints
-- fetched again, tokens rotated), UNREGISTERED (a credentials DELETE). The newest row is the
-- connection in force (view ocpi_connection_current). Rows are never changed or deleted.
--
-- Two tokens per connection, one in each direction:
--   hub_token_hash      the token the partner calls the hub with (issued by the hub, kind C in
--                       ocpi_token; only its sha256 is anywhere in the database);
--   partner_token_*     the token the hub calls the partner with (the partner's token B, or
--                       its token C when the hub started the handshake). The hub must send it,
--                       so it cannot be hashed: AES-256-GCM under a key derived from the hub
--                       key (settlement.partner_tokens), named by partner_token_key_id so a
--                       rotated hub key still opens it. Someone reading the tables gets
--                       ciphertext only.
-- request_id and correlation_id are the X-Request-ID and X-Correlation-ID of the request
-- that made the row (the partner's credentials request, or the hub's POST to the partner).
CREATE TABLE ocpi_connection (
    partner               text NOT NULL CHECK (partner ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    seq                   integer NOT NULL CHECK (seq >= 1),  -- set by the insert trigger
    event                 text NOT NULL CHECK (event IN ('REGISTERED', 'UPDATED', 'UNREGISTERED')),
    -- who started it: the partner (POST/PUT/DELETE to the hub) or the hub (partners connect)
    initiated_by          text NOT NULL CHECK (initiated_by IN ('PARTNER', 'HUB')),
    version               text CHECK (version ~ '^[0-9]+(\.[0-9]+)*$'),
    versions_url          text CHECK (length(versions_url) <= 255),
    version_url           text CHECK (length(version_url) <= 255),
    endpoints             jsonb CHECK (jsonb_typeof(endpoints) = 'array'),
    roles                 jsonb CHECK (jsonb_typeof(roles) = 'array'),
    partner_token_key_id  text CHECK (partner_token_key_id ~ '^hub-[0-9a-f]{12}$'),
    partner_token_nonce   bytea CHECK (length(partner_token_nonce) = 12),
    partner_token_sealed  bytea CHECK (length(partner_token_sealed) BETWEEN 17 AND 1024),
    -- send partner_token as it is, not base64-encoded (OCPI 2.1.1 and many 2.2 parties)
    token_unencoded       boolean NOT NULL DEFAULT false,
    -- REGISTERED/UPDATED: the token issued; UNREGISTERED: the token it revoked (if any)
    hub_token_hash        text REFERENCES ocpi_token (token_hash),
    request_id            text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 64),
    correlation_id        text NOT NULL CHECK (length(correlation_id) BETWEEN 1 AND 64),
    created_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner, seq),
    -- a registration carries everything the hub needs to call the partner; an
    -- unregistration carries nothing of it
    CHECK (
        CASE event
            WHEN 'UNREGISTERED' THEN
                version IS NULL AND versions_url IS NULL AND version_url IS NULL
                AND endpoints IS NULL AND roles IS NULL AND partner_token_key_id IS NULL
                AND partner_token_nonce IS NULL AND partner_token_sealed IS NULL
            ELSE
                version IS NOT NULL AND versions_url IS NOT NULL AND version_url IS NOT NULL
                AND endpoints IS NOT NULL AND roles IS NOT NULL
                AND partner_token_key_id IS NOT NULL AND partner_token_nonce IS NOT NULL
                AND partner_token_sealed IS NOT NULL AND hub_token_hash IS NOT NULL
        END
    )
);

-- The lifecycle, held by PostgreSQL: REGISTERED only when not registered (first, or after
-- UNREGISTERED); UPDATED and UNREGISTERED only when registered. seq is the next number for
-- the partner, so two handshakes racing for the same partner compute the same seq and the
-- primary key lets exactly one of them in (the other's transaction fails and answers 405).
CREATE FUNCTION ocpi_connection_next() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    previous record;
    token_partner text;
BEGIN
    SELECT seq, event INTO previous FROM ocpi_connection
     WHERE partner = NEW.partner ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(previous.seq, 0) + 1;
    IF NEW.event = 'REGISTERED' AND previous.event IS NOT NULL
       AND previous.event <> 'UNREGISTERED' THEN
        RAISE EXCEPTION 'ocpi_connection: % is registered already', NEW.partner
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.event <> 'REGISTERED' AND (previous.event IS NULL OR previous.event = 'UNREGISTERED') THEN
        RAISE EXCEPTION 'ocpi_connection: % is not registered', NEW.partner
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.hub_token_hash IS NOT NULL THEN
        SELECT partner INTO token_partner FROM ocpi_token WHERE token_hash = NEW.hub_token_hash;
        IF token_partner IS DISTINCT FROM NEW.partner THEN
            RAISE EXCEPTION 'the hub token of a connection of % belongs to %', NEW.partner,
                coalesce(token_partner, 'no partner') USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

-- Row triggers fire in name order: first the partner must be one (the check partner keys
-- use: 0006), then the lifecycle.
CREATE TRIGGER ocpi_connection_registered BEFORE INSERT ON ocpi_connection
    FOR EACH ROW EXECUTE FUNCTION partner_key_partner_registered();
CREATE TRIGGER ocpi_connection_sequence BEFORE INSERT ON ocpi_connection
    FOR EACH ROW EXECUTE FUNCTION ocpi_connection_next();
CREATE TRIGGER ocpi_connection_append_only BEFORE UPDATE OR DELETE ON ocpi_connection
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ocpi_connection_no_truncate BEFORE TRUNCATE ON ocpi_connection
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The connection in force per partner: its newest row (registered unless UNREGISTERED).
CREATE VIEW ocpi_connection_current AS
    SELECT DISTINCT ON (partner) *
      FROM ocpi_connection
     ORDER BY partner, seq DESC;
