-- CDRs received over OCPI HTTP (`POST /ocpi/2.2.1/cdrs`): every authenticated body, as
-- received, with what the hub answered, and where the accepted ones went on the topic.
-- depends: 0010_ocpi_tokens
--
-- One receipt per authenticated request that delivered a body (pipeline/ocpi/cdrs.py):
--   ACCEPTED   the first of its CDR key that passed the door; its record goes to
--              cdr.submitted, and `ocpi_cdr_published` says where once the broker acked it
--   DUPLICATE  the same CDR key and content as an accepted receipt (`duplicate_of`): the
--              same Location, nothing new on the topic (unless the accepted one never got
--              there: then this request publishes it)
--   REJECTED   refused at the door, with its row in `rejection` (stage `ingest`, no archive
--              row: it never reached the topic), e.g. schema_invalid, not_owner,
--              cdr_id_conflict, malformed_json, body_too_large
-- At most one ACCEPTED receipt per CDR key (`ocpi_cdr_one_accepted`): two API processes that
-- receive the same id at once cannot both accept it. "The same content" is decided as the
-- clearing worker decides it (settlement.clearing.identity.content_hash: key order,
-- whitespace and trailing zeros do not count); `body_hash` only spares that work when the
-- bytes are equal.
CREATE TABLE ocpi_cdr_receipt (
    receipt_id      uuid PRIMARY KEY,
    partner         text NOT NULL CHECK (partner ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    token_hash      text NOT NULL REFERENCES ocpi_token (token_hash),
    cdr_key         text,                       -- NL*TNM*<id>, when the body names one
    body_hash       text NOT NULL CHECK (body_hash ~ '^[0-9a-f]{64}$'),  -- sha256 of body
    body            bytea NOT NULL,             -- as received (empty: refused unread)
    body_bytes      bigint NOT NULL CHECK (body_bytes >= 0),  -- as received or declared
    request_id      text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 64),
    correlation_id  text NOT NULL CHECK (length(correlation_id) BETWEEN 1 AND 64),
    received_at     timestamptz NOT NULL DEFAULT now(),
    outcome         text NOT NULL CHECK (outcome IN ('ACCEPTED', 'DUPLICATE', 'REJECTED')),
    duplicate_of    uuid REFERENCES ocpi_cdr_receipt (receipt_id),
    rejection_id    bigint UNIQUE REFERENCES rejection (rejection_id),
    CHECK (CASE outcome
             WHEN 'ACCEPTED' THEN cdr_key IS NOT NULL
                                  AND duplicate_of IS NULL AND rejection_id IS NULL
             WHEN 'DUPLICATE' THEN cdr_key IS NOT NULL AND duplicate_of IS NOT NULL
                                   AND rejection_id IS NULL
             ELSE rejection_id IS NOT NULL AND duplicate_of IS NULL
           END)
);
CREATE UNIQUE INDEX ocpi_cdr_one_accepted ON ocpi_cdr_receipt (cdr_key) WHERE outcome = 'ACCEPTED';
CREATE INDEX ocpi_cdr_receipt_partner ON ocpi_cdr_receipt (partner, received_at);
CREATE INDEX ocpi_cdr_receipt_request ON ocpi_cdr_receipt (request_id);  -- a dispute starts here
-- a CDR is 2 to 4 kB: kept uncompressed in the page, as the archive is (0004)
ALTER TABLE ocpi_cdr_receipt SET (toast_tuple_target = 8160);

-- Where an accepted receipt's record is on cdr.submitted, written once the broker acked it
-- (acks=all) and before the partner's response. Normally one row per accepted receipt; two
-- when a duplicate re-published a record whose first publication failed while another
-- process was still publishing it (the clearing worker books one, the other is an exact
-- duplicate). An accepted receipt without a row here never reached the topic (its partner
-- got an error and sends it again).
CREATE TABLE ocpi_cdr_published (
    topic       text NOT NULL,
    partition   integer NOT NULL CHECK (partition >= 0),
    "offset"    bigint NOT NULL CHECK ("offset" >= 0),
    receipt_id  uuid NOT NULL REFERENCES ocpi_cdr_receipt (receipt_id),
    event_id    uuid NOT NULL,
    acked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);
CREATE INDEX ocpi_cdr_published_receipt ON ocpi_cdr_published (receipt_id);

CREATE TRIGGER ocpi_cdr_receipt_append_only BEFORE UPDATE OR DELETE ON ocpi_cdr_receipt
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ocpi_cdr_receipt_no_truncate BEFORE TRUNCATE ON ocpi_cdr_receipt
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ocpi_cdr_published_append_only BEFORE UPDATE OR DELETE ON ocpi_cdr_published
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ocpi_cdr_published_no_truncate BEFORE TRUNCATE ON ocpi_cdr_published
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
