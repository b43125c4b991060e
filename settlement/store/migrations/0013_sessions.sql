-- Sessions (OCPI 2.2.1 mod_sessions) and the CDR each one should end with.
-- depends: 0010_ocpi_tokens
--
--   session_push     what partners PUT and PATCH over OCPI, accepted or refused, as the API
--                    received it (written by roamclear_api)
--   session_version  every session event the worker consumed from session.events (written by
--                    roamclear_worker); the view `session` is each session's current state
--   cdr_session      which session each CDR the clearing agent decided belongs to (written by
--                    roamclear_worker in the clearing transaction), so a session's CDR is
--                    found by index instead of by parsing the archive
-- All three are append-only: a session changes by a new version, never by an UPDATE.

CREATE TABLE session_push (
    push_id           bigserial PRIMARY KEY,
    received_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    partner           text NOT NULL CHECK (partner ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),  -- the token's
    method            text NOT NULL CHECK (method IN ('PUT', 'PATCH')),
    -- the URL's segments as sent (cut to 256 characters): evidence, even when they are wrong
    url_country_code  text NOT NULL CHECK (length(url_country_code) <= 256),
    url_party_id      text NOT NULL CHECK (length(url_party_id) <= 256),
    url_session_id    text NOT NULL CHECK (length(url_session_id) <= 256),
    session_key       text,           -- CC*PID*ID, upper case; NULL when the URL is not the caller's
    request_id        text NOT NULL CHECK (length(request_id) <= 64),
    correlation_id    text NOT NULL CHECK (length(correlation_id) <= 64),
    body              bytea NOT NULL,  -- exactly as received (cut at the body limit when larger)
    body_truncated    boolean NOT NULL DEFAULT false,
    outcome           text NOT NULL CHECK (outcome IN ('ACCEPTED', 'REJECTED')),
    http_status       integer NOT NULL CHECK (http_status BETWEEN 100 AND 599),
    status_code       integer NOT NULL CHECK (status_code BETWEEN 1000 AND 4999),  -- OCPI's
    reason_code       text CHECK (reason_code ~ '^[a-z][a-z0-9_]{0,63}$'),
    message           text CHECK (length(message) <= 4000),
    violations        jsonb NOT NULL DEFAULT '[]'::jsonb,
    event_id          uuid UNIQUE,     -- accepted: the session.event produced (and acked) for it
    session           jsonb,           -- accepted: the whole session as the hub holds it after it
    CHECK (CASE outcome
             WHEN 'ACCEPTED' THEN event_id IS NOT NULL AND session IS NOT NULL
                                  AND session_key IS NOT NULL AND reason_code IS NULL
             ELSE event_id IS NULL AND session IS NULL AND reason_code IS NOT NULL
           END)
);
-- the receiver's current state of a session: its newest accepted push (GET, and PATCH's base)
CREATE INDEX session_push_accepted ON session_push (session_key, push_id)
    WHERE outcome = 'ACCEPTED';
CREATE INDEX session_push_partner ON session_push (partner, push_id);

CREATE TABLE session_version (
    archive_id       bigint PRIMARY KEY REFERENCES raw_event (archive_id),
    event_id         uuid NOT NULL UNIQUE,   -- a record produced twice is one version
    session_key      text NOT NULL,          -- CC*PID*ID, upper case
    cpo              text NOT NULL CHECK (cpo ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    emsp             text NOT NULL CHECK (emsp ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),  -- cdr_token's
    session_id       text NOT NULL,          -- as the CPO spells it
    status           text NOT NULL
        CHECK (status IN ('ACTIVE', 'COMPLETED', 'INVALID', 'PENDING', 'RESERVATION')),
    start_date_time  timestamptz NOT NULL,
    end_date_time    timestamptz,
    kwh              numeric NOT NULL,
    currency         char(3) NOT NULL,
    last_updated     timestamptz NOT NULL,   -- the CPO's
    occurred_at      timestamptz NOT NULL,   -- the envelope's: when the hub accepted this update
    submitter        text NOT NULL,
    proof            text NOT NULL CHECK (proof ~ '^(hub|pk)-[0-9a-f]{12}$'),
    body             jsonb NOT NULL,         -- the Session the event carried, unknown fields too
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
-- the current state: an index scan in exactly the view's order, no sort
CREATE INDEX session_version_order
    ON session_version (session_key, occurred_at DESC, archive_id DESC);
CREATE INDEX session_version_cpo ON session_version (cpo);
CREATE INDEX session_version_emsp ON session_version (emsp);

-- The current state of each session: its newest version, in the order the hub accepted them
-- (occurred_at; the archive order breaks a tie). `versions` counts what came before.
CREATE VIEW session AS
    SELECT DISTINCT ON (v.session_key)
           v.session_key, v.cpo, v.emsp, v.session_id, v.status, v.start_date_time,
           v.end_date_time, v.kwh, v.currency, v.last_updated, v.occurred_at AS updated_at,
           v.submitter, v.proof, v.event_id, v.archive_id, v.body,
           count(*) OVER (PARTITION BY v.session_key
                          ORDER BY v.occurred_at DESC, v.archive_id DESC
                          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS versions
      FROM session_version v
     ORDER BY v.session_key, v.occurred_at DESC, v.archive_id DESC;

-- No foreign key to raw_event: the link is written from the archive ids of the same
-- transaction, and the check cost about 8 µs a CDR on the clearing hot path (measured).
CREATE TABLE cdr_session (
    archive_id   bigint PRIMARY KEY,       -- the decided record (raw_event, cdr_outcome)
    session_key  text NOT NULL,   -- the CDR's country_code*party_id*session_id, upper case
    cdr_key      text NOT NULL    -- the CDR's own key
);
CREATE INDEX cdr_session_session ON cdr_session (session_key);

CREATE TRIGGER session_push_append_only BEFORE UPDATE OR DELETE ON session_push
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER session_push_no_truncate BEFORE TRUNCATE ON session_push
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER session_version_append_only BEFORE UPDATE OR DELETE ON session_version
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER session_version_no_truncate BEFORE TRUNCATE ON session_version
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER cdr_session_append_only BEFORE UPDATE OR DELETE ON cdr_session
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER cdr_session_no_truncate BEFORE TRUNCATE ON cdr_session
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- CDRs decided before this migration: linked from the archive once, as clearing links them
-- from now on (a decoded CDR with a session_id, from a proven submitter that owns it). A
-- record that PostgreSQL cannot read as JSON (a lone surrogate escape, say) is skipped: the
-- clearing agent never decoded such a CDR into a booking the report would look for.
CREATE FUNCTION pg_temp.envelope_json(value bytea) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    RETURN ltrim(convert_from(value, 'UTF8'), U&'\FEFF')::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;
INSERT INTO cdr_session (archive_id, session_key, cdr_key)
SELECT e.archive_id,
       upper(concat_ws('*', d #>> '{cdr,country_code}', d #>> '{cdr,party_id}',
                       d #>> '{cdr,session_id}')) AS session_key,
       upper(concat_ws('*', d #>> '{cdr,country_code}', d #>> '{cdr,party_id}',
                       d #>> '{cdr,id}')) AS cdr_key
  FROM cdr_outcome o
  JOIN raw_event e USING (archive_id)
  LEFT JOIN rejection r ON r.rejection_id = o.rejection_id
 CROSS JOIN LATERAL pg_temp.envelope_json(e.value) AS d
 WHERE o.proof IS NOT NULL
   AND (o.outcome <> 'REJECTED' OR r.stage NOT IN ('decode', 'authenticate'))
   AND d #>> '{cdr,session_id}' <> ''
   AND upper(d #>> '{cdr,country_code}') = upper(d #>> '{submitter,country_code}')
   AND upper(d #>> '{cdr,party_id}') = upper(d #>> '{submitter,party_id}');
