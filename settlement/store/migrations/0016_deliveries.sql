-- Delivering booked CDRs to their eMSPs over OCPI (pipeline/delivery): one row per CDR and
-- eMSP with its state, and every attempt made.
-- depends: 0015_tariff_hash
--
-- cdr_delivery: created by the delivery agent for each booking (a CHARGE from cdr.rated, a
-- REVERSAL from ledger.transactions), for its eMSP. `document` is the CDR as the eMSP gets
-- it, byte for byte the same on every attempt and in every GET (settlement.delivery
-- .document). A reversal's is built from its original's, so a reversal announced before its
-- original waits in cdr_delivery_waiting until the original's row is there; and a credit is
-- pushed only once the CDR it credits reached the eMSP.
--   PULL       the eMSP had no `cdrs` RECEIVER endpoint when the CDR was booked: nothing is
--              pushed, it GETs the CDR (GET /ocpi/2.2.1/cdrs); final
--   PENDING    not tried yet
--   RETRYING   tried and failed; tried again at next_attempt_at
--   DELIVERED  the eMSP answered 2xx / OCPI 1xxx: final, never sent again
--   DEAD       failed attempts_max times in a row; `roamclear deliveries retry` re-queues it
-- A dispatcher claims a due row by setting lease_until (and counting the attempt) in a
-- transaction of its own, commits, then POSTs: a dispatcher killed during the POST leaves the
-- lease to expire, and the row is claimed again (the eMSP may then receive the same CDR twice:
-- the same id and body, which an OCPI receiver answers as a duplicate; docs/ocpi.md).
-- Exactly one DELIVERED per CDR and eMSP: one row per pair (the unique constraint), and a
-- DELIVERED row is never claimed.
CREATE TABLE cdr_delivery (
    delivery_id      bigserial PRIMARY KEY,
    transaction_id   uuid NOT NULL REFERENCES ledger_transaction (transaction_id),
    kind             text NOT NULL CHECK (kind IN ('CHARGE', 'REVERSAL')),
    reverses         uuid REFERENCES ledger_transaction (transaction_id),
    cdr_key          text NOT NULL,
    cpo              text NOT NULL CHECK (cpo ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    emsp             text NOT NULL CHECK (emsp ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    document         bytea NOT NULL,        -- the CDR as the eMSP gets it (the body POSTed)
    correlation_id   text NOT NULL CHECK (length(correlation_id) BETWEEN 1 AND 64),
    last_updated     timestamptz NOT NULL,  -- the CDR's, untouched: GET's date filters
    state            text NOT NULL DEFAULT 'PENDING'
                     CHECK (state IN ('PULL', 'PENDING', 'RETRYING', 'DELIVERED', 'DEAD')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    requeued_after   integer NOT NULL DEFAULT 0,  -- attempts when last re-queued (retry)
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,           -- claimed by a dispatcher until then
    last_error       text,
    emsp_location    text,                  -- the eMSP's Location header for the CDR
    request_id       text,                  -- the X-Request-ID of the successful attempt
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    CONSTRAINT one_delivery_per_cdr_and_emsp UNIQUE (transaction_id, emsp),
    CHECK ((kind = 'REVERSAL') = (reverses IS NOT NULL)),
    CHECK ((state = 'DELIVERED') = (delivered_at IS NOT NULL AND request_id IS NOT NULL))
);
CREATE INDEX cdr_delivery_due ON cdr_delivery (emsp, next_attempt_at)
    WHERE state IN ('PENDING', 'RETRYING');
-- GET /cdrs pages by delivery_id, which grows in commit order: the intake inserts under a
-- transaction-scoped advisory lock (settlement.store.deliveries.create), so a row committed
-- later never takes a place before rows a client has already paged past.
CREATE INDEX cdr_delivery_emsp ON cdr_delivery (emsp, delivery_id) INCLUDE (last_updated);
CREATE INDEX cdr_delivery_cpo ON cdr_delivery (cpo, delivery_id) INCLUDE (last_updated);
CREATE INDEX cdr_delivery_cdr ON cdr_delivery (cdr_key);

-- What may change: the state machine and its bookkeeping; never which CDR, which eMSP, the
-- correlation id, or a document once set; a DELIVERED row not at all.
CREATE FUNCTION cdr_delivery_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.delivery_id <> OLD.delivery_id OR NEW.transaction_id <> OLD.transaction_id
       OR NEW.kind <> OLD.kind OR NEW.reverses IS DISTINCT FROM OLD.reverses
       OR NEW.cdr_key <> OLD.cdr_key OR NEW.cpo <> OLD.cpo OR NEW.emsp <> OLD.emsp
       OR NEW.correlation_id <> OLD.correlation_id OR NEW.created_at <> OLD.created_at
       OR NEW.last_updated <> OLD.last_updated
       OR NEW.document <> OLD.document THEN
        RAISE EXCEPTION 'cdr_delivery %: what is delivered cannot change', OLD.delivery_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.state IN ('DELIVERED', 'PULL') THEN
        RAISE EXCEPTION 'cdr_delivery %: % is final', OLD.delivery_id, OLD.state
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.attempts < OLD.attempts THEN
        RAISE EXCEPTION 'cdr_delivery %: attempts only grow', OLD.delivery_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER cdr_delivery_guard BEFORE UPDATE ON cdr_delivery
    FOR EACH ROW EXECUTE FUNCTION cdr_delivery_guard();
CREATE TRIGGER cdr_delivery_no_delete BEFORE DELETE ON cdr_delivery
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER cdr_delivery_no_truncate BEFORE TRUNCATE ON cdr_delivery
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Reversals announced before their original's delivery row exists (the worker's events come
-- on two topics, in no order between them): moved into cdr_delivery once it does.
CREATE TABLE cdr_delivery_waiting (
    transaction_id  uuid PRIMARY KEY REFERENCES ledger_transaction (transaction_id),
    reverses        uuid NOT NULL REFERENCES ledger_transaction (transaction_id),
    announced_at    timestamptz NOT NULL DEFAULT now()
);

-- Every attempt, the audit trail a dispute asks for: written when the attempt starts (before
-- the POST, so an attempt cut short by a crash is on record, finished_at NULL) and finished
-- with the answer.
CREATE TABLE cdr_delivery_attempt (
    delivery_id  bigint NOT NULL REFERENCES cdr_delivery (delivery_id),
    attempt      integer NOT NULL CHECK (attempt >= 1),
    request_id   text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 64),
    url          text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    delivered    boolean,
    http_status  integer,
    ocpi_status  integer,
    error        text,
    PRIMARY KEY (delivery_id, attempt),
    CHECK ((finished_at IS NULL) = (delivered IS NULL))
);
CREATE INDEX cdr_delivery_attempt_request ON cdr_delivery_attempt (request_id);

CREATE FUNCTION cdr_delivery_attempt_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.finished_at IS NOT NULL OR NEW.delivery_id <> OLD.delivery_id
       OR NEW.attempt <> OLD.attempt OR NEW.request_id <> OLD.request_id
       OR NEW.url <> OLD.url OR NEW.started_at <> OLD.started_at THEN
        RAISE EXCEPTION 'cdr_delivery_attempt %/%: an attempt is finished once',
            OLD.delivery_id, OLD.attempt USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER cdr_delivery_attempt_once BEFORE UPDATE ON cdr_delivery_attempt
    FOR EACH ROW EXECUTE FUNCTION cdr_delivery_attempt_once();
CREATE TRIGGER cdr_delivery_attempt_no_delete BEFORE DELETE ON cdr_delivery_attempt
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER cdr_delivery_attempt_no_truncate BEFORE TRUNCATE ON cdr_delivery_attempt
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
