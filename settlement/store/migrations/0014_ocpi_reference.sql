-- The tariffs and locations receivers of OCPI 2.2.1 (pipeline/ocpi/tariffs.py, locations.py):
-- tariff deletions, one location version per update, the zones clearing reads, and every
-- body a partner sent to either receiver.
-- depends: 0010_ocpi_tokens

-- A tariff DELETE ("no longer in use and will not be used in future") is recorded, never
-- erased: versions stay (a CDR of a session that started before the DELETE is still priced
-- by the version in force then). A PUT of a deleted tariff restores it. Events alternate per
-- tariff (checked under the tariff's advisory lock, settlement/store/reference_store.py).
CREATE TABLE tariff_lifecycle (
    tariff_key   text NOT NULL,             -- NL*TNM*AC-STANDARD
    cpo          text NOT NULL,
    tariff_id    text NOT NULL,
    event        text NOT NULL CHECK (event IN ('DELETED', 'RESTORED')),
    at           timestamptz NOT NULL,      -- the hub's clock when it received the request
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tariff_key, at)
);

-- Locations: a PUT or PATCH at any depth stores the whole Location again, and two updates
-- may carry the same last_updated (two EVSEs changing status within a second), so a
-- version is numbered by when it arrived; the highest revision is the current document.
-- Existing rows are numbered in heap order, which is insertion order in a table that
-- never updates or deletes.
ALTER TABLE location_version ADD COLUMN revision bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE location_version DROP CONSTRAINT location_version_pkey;
ALTER TABLE location_version ADD CONSTRAINT location_version_pkey
    PRIMARY KEY (location_key, revision);

-- The time zone of each location, a row only when it changes: the clearing agent reloads
-- its reference cache whenever a count it watches moves (FINGERPRINT_QUERY), and an EVSE
-- status PATCH every few seconds must not make it reload every location it knows.
CREATE TABLE location_zone (
    location_key  text NOT NULL,
    revision      bigint NOT NULL,          -- the location_version that set it
    cpo           text NOT NULL,
    location_id   text NOT NULL,
    time_zone     text,
    PRIMARY KEY (location_key, revision),
    FOREIGN KEY (location_key, revision) REFERENCES location_version (location_key, revision)
);
INSERT INTO location_zone (location_key, revision, cpo, location_id, time_zone)
SELECT location_key, revision, cpo, location_id, time_zone
  FROM location_version ORDER BY revision;

-- Every authenticated request with a body (or a DELETE) to the tariffs and locations
-- receivers, accepted or not, with what the hub answered and why: nothing a partner sent
-- is lost, and a dispute can name the X-Request-ID that delivered a version.
CREATE TABLE ocpi_reference_receipt (
    receipt_id      bigserial PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    partner         text NOT NULL CHECK (partner ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    module          text NOT NULL CHECK (module IN ('tariffs', 'locations')),
    method          text NOT NULL CHECK (method IN ('PUT', 'PATCH', 'DELETE')),
    object_path     text NOT NULL CHECK (length(object_path) <= 300),  -- URL after the module
    request_id      text NOT NULL CHECK (length(request_id) <= 64),
    correlation_id  text NOT NULL CHECK (length(correlation_id) <= 64),
    body            bytea,                  -- as received; NULL for a DELETE
    body_truncated  boolean NOT NULL DEFAULT false,  -- longer than the receiver's limit
    http_status     smallint NOT NULL,
    status_code     integer NOT NULL CHECK (status_code BETWEEN 1000 AND 4999),
    message         text NOT NULL CHECK (length(message) <= 2000),
    object_key      text,                   -- what it changed: NL*TNM*LOC1, NL*TNM*AC-1
    CHECK ((status_code = 1000) = (object_key IS NOT NULL))
);
CREATE INDEX ocpi_reference_receipt_partner ON ocpi_reference_receipt (partner, received_at);
CREATE INDEX ocpi_reference_receipt_request ON ocpi_reference_receipt (request_id);

CREATE TRIGGER tariff_lifecycle_append_only BEFORE UPDATE OR DELETE ON tariff_lifecycle
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER tariff_lifecycle_no_truncate BEFORE TRUNCATE ON tariff_lifecycle
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER location_zone_append_only BEFORE UPDATE OR DELETE ON location_zone
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER location_zone_no_truncate BEFORE TRUNCATE ON location_zone
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ocpi_reference_receipt_append_only BEFORE UPDATE OR DELETE
    ON ocpi_reference_receipt FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ocpi_reference_receipt_no_truncate BEFORE TRUNCATE ON ocpi_reference_receipt
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
