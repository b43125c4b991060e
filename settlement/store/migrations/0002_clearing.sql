-- Clearing: reference data with full history, the double-entry ledger, rejections and the
-- outcome of every submitted event (invariant 2 is a query over raw_event and cdr_outcome).
-- depends: 0001_foundation

-- Reference data -------------------------------------------------------------------------

CREATE TABLE tariff_version (
    tariff_key    text NOT NULL,            -- NL*TNM*AC-STANDARD (CPO and tariff id)
    cpo           text NOT NULL,
    tariff_id     text NOT NULL,
    last_updated  timestamptz NOT NULL,
    content_hash  text NOT NULL,            -- sha256 of the canonical tariff JSON
    currency      char(3) NOT NULL,
    valid_from    timestamptz,              -- the tariff's start_date_time
    valid_to      timestamptz,              -- its end_date_time (exclusive)
    body          jsonb NOT NULL,
    published_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tariff_key, last_updated, content_hash)
);
CREATE INDEX tariff_version_cpo ON tariff_version (cpo);

CREATE TABLE location_version (
    location_key  text NOT NULL,            -- NL*TNM*LOC1
    cpo           text NOT NULL,
    location_id   text NOT NULL,
    last_updated  timestamptz NOT NULL,
    time_zone     text,
    body          jsonb NOT NULL,
    published_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (location_key, last_updated)
);

CREATE TABLE agreement_version (
    agreement_id  text NOT NULL,
    version       integer NOT NULL CHECK (version >= 1),
    cpo           text NOT NULL,
    emsp          text,                     -- NULL: the CPO's default for any eMSP
    currency      char(3) NOT NULL,
    valid_from    timestamptz NOT NULL,
    valid_to      timestamptz,
    body          jsonb NOT NULL,
    published_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agreement_id, version),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX agreement_version_parties ON agreement_version (cpo, emsp);

-- The archive is keyed by where the broker put each record: redelivery of the same
-- record (a crash, a rebalance) finds it archived and changes nothing.
ALTER TABLE raw_event ADD CONSTRAINT raw_event_position_unique UNIQUE (topic, partition, "offset");
DROP INDEX raw_event_position;

-- The ledger -----------------------------------------------------------------------------

CREATE TABLE ledger_transaction (
    transaction_id   uuid PRIMARY KEY,      -- uuid5 of canonical CDR key and content hash
    cdr_key          text NOT NULL,         -- the booked CDR's own key
    kind             text NOT NULL CHECK (kind IN ('CHARGE', 'REVERSAL')),
    reverses         uuid REFERENCES ledger_transaction (transaction_id),
    content_hash     text NOT NULL,
    currency         char(3) NOT NULL,
    cpo              text NOT NULL,
    emsp             text NOT NULL,
    session_start    timestamptz NOT NULL,
    session_end      timestamptz NOT NULL,
    location_id      text,
    energy_kwh       numeric NOT NULL,
    amount_excl_vat  numeric(20, 4) NOT NULL,
    amount_incl_vat  numeric(20, 4) NOT NULL,
    fee              numeric(20, 4) NOT NULL,
    rating           jsonb NOT NULL,        -- tariff and agreement versions, rounding, breakdown
    archive_id       bigint REFERENCES raw_event (archive_id),
    booked_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT one_booking_per_cdr UNIQUE (cdr_key),
    CONSTRAINT one_reversal_per_transaction UNIQUE (reverses),
    CHECK ((kind = 'REVERSAL') = (reverses IS NOT NULL))
);

CREATE TABLE ledger_posting (
    posting_id      bigserial PRIMARY KEY,
    transaction_id  uuid NOT NULL REFERENCES ledger_transaction (transaction_id),
    account         text NOT NULL,          -- partner:NL*TNM, hub:fees, hub:rounding
    side            text NOT NULL CHECK (side IN ('DEBIT', 'CREDIT')),
    amount          numeric(20, 4) NOT NULL CHECK (amount > 0),
    currency        char(3) NOT NULL,
    value_time      timestamptz NOT NULL,   -- the CDR's end: decides the settlement period
    settlement_period text NOT NULL         -- the agreement's: DAILY, WEEKLY or MONTHLY
        CHECK (settlement_period IN ('DAILY', 'WEEKLY', 'MONTHLY')),
    booked_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_posting_transaction ON ledger_posting (transaction_id);
CREATE INDEX ledger_posting_account ON ledger_posting (account, currency);

-- Invariant 4, checked by the database: the postings of every transaction balance per
-- currency. Checked once per INSERT statement over its transition table (a COPY of a whole
-- batch is one statement), so the postings of one transaction must be inserted together, in
-- one statement; a transaction may have none (a zero-value CDR), never a lone posting.
CREATE FUNCTION check_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    offender uuid;
BEGIN
    SELECT p.transaction_id INTO offender
      FROM ledger_posting p
     WHERE p.transaction_id IN (SELECT DISTINCT transaction_id FROM inserted)
     GROUP BY p.transaction_id, p.currency
    HAVING SUM(CASE p.side WHEN 'DEBIT' THEN p.amount ELSE -p.amount END) <> 0
     LIMIT 1;
    IF offender IS NOT NULL THEN
        RAISE EXCEPTION 'transaction % does not balance: debits must equal credits per currency',
            offender USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_posting_balanced
    AFTER INSERT ON ledger_posting REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION check_postings_balanced();

CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_posting_append_only BEFORE UPDATE OR DELETE ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Rejections and outcomes ----------------------------------------------------------------

CREATE TABLE rejection (
    rejection_id   bigserial PRIMARY KEY,
    archive_id     bigint REFERENCES raw_event (archive_id),
    reason_code    text NOT NULL,
    stage          text NOT NULL,
    message        text NOT NULL,
    violations     jsonb NOT NULL DEFAULT '[]'::jsonb,
    submitter      text,
    cdr_key        text,
    payload        text NOT NULL,           -- the original value as received (may be bad JSON)
    rejected_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejection_reason ON rejection (reason_code);
CREATE INDEX rejection_submitter ON rejection (submitter);
CREATE TRIGGER rejection_append_only BEFORE UPDATE OR DELETE ON rejection
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- A retry re-submits a rejected payload as a new event (which gets its own outcome).
CREATE TABLE rejection_retry (
    rejection_id  bigint NOT NULL REFERENCES rejection (rejection_id),
    event_id      uuid NOT NULL,
    retried_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rejection_id, event_id)
);

-- Invariant 2: exactly one outcome per archived submitted event.
CREATE TABLE cdr_outcome (
    archive_id      bigint PRIMARY KEY REFERENCES raw_event (archive_id),
    outcome         text NOT NULL CHECK (outcome IN ('LEDGERED', 'REJECTED', 'DUPLICATE')),
    transaction_id  uuid REFERENCES ledger_transaction (transaction_id),
    rejection_id    bigint REFERENCES rejection (rejection_id),
    decided_at      timestamptz NOT NULL DEFAULT now(),
    -- a rejection names its rejection; a booking or a duplicate names the transaction
    CHECK (CASE outcome
             WHEN 'REJECTED' THEN rejection_id IS NOT NULL AND transaction_id IS NULL
             ELSE transaction_id IS NOT NULL AND rejection_id IS NULL
           END)
);
CREATE TRIGGER cdr_outcome_append_only BEFORE UPDATE OR DELETE ON cdr_outcome
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
