-- Settlement: close runs, batches (one per partner account, currency, period kind and
-- period), rounding transactions, and the finance API's hashed bearer tokens.
-- depends: 0002_clearing
--
-- Membership is a range, not a row per posting (docs/settlement.md "Membership"): a CLOSED
-- batch B of key (account, currency, period_kind) holds exactly the postings p of that key
-- with
--     p.posting_id <= B.watermark
--     AND (p.value_time in [B.period_start, B.period_end)              -- on time
--          OR (p.value_time < B.period_start AND p.posting_id > B.prior_watermark))  -- late
-- The closer takes its watermark under a lock that waits for every in-flight insert, so every
-- posting id at or below a watermark was committed and visible when the batch closed. The
-- triggers below keep that true: nothing is inserted below a closed watermark, batches are
-- appended in period order with non-decreasing watermarks, and a CLOSED batch never changes.

-- A rounding transaction books a batch's rounding difference (partner account against
-- hub:rounding); it has no CDR, so it gets its own kind.
ALTER TABLE ledger_transaction DROP CONSTRAINT ledger_transaction_kind_check;
ALTER TABLE ledger_transaction ADD CONSTRAINT ledger_transaction_kind_check
    CHECK (kind IN ('CHARGE', 'REVERSAL', 'ROUNDING'));

-- Every close, successful or not (a FAILED run is recorded after its rollback).
CREATE TABLE settlement_run (
    run_id          bigserial PRIMARY KEY,
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    as_of           timestamptz NOT NULL,
    settlement_tz   text NOT NULL,
    grace           interval NOT NULL,
    state           text NOT NULL CHECK (state IN ('CLOSED', 'FAILED')),
    scan_from       bigint,             -- postings with ids above it were examined
    watermark       bigint,             -- ... up to this id (after the rounding postings)
    next_scan_from  bigint,             -- every posting at or below it is in a batch
    batches         integer NOT NULL DEFAULT 0,
    postings        bigint NOT NULL DEFAULT 0,
    error           text,
    CHECK ((state = 'CLOSED') = (watermark IS NOT NULL AND next_scan_from IS NOT NULL))
);
CREATE TRIGGER settlement_run_append_only BEFORE UPDATE OR DELETE ON settlement_run
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE settlement_batch (
    batch_id          bigserial PRIMARY KEY,
    run_id            bigint NOT NULL REFERENCES settlement_run (run_id),
    account           text NOT NULL CHECK (account ~ '^partner:[A-Z]{2}\*[A-Z0-9]{3}$'),
    partner           text GENERATED ALWAYS AS (substr(account, 9)) STORED,
    currency          char(3) NOT NULL,
    period_kind       text NOT NULL CHECK (period_kind IN ('DAILY', 'WEEKLY', 'MONTHLY')),
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    settlement_tz     text NOT NULL,
    state             text NOT NULL CHECK (state IN ('OPEN', 'CLOSING', 'CLOSED', 'FAILED')),
    watermark         bigint NOT NULL,
    prior_watermark   bigint NOT NULL,  -- the key's previous batch's watermark, 0 if none
    postings          integer NOT NULL CHECK (postings > 0),
    late_postings     integer NOT NULL CHECK (late_postings >= 0 AND late_postings <= postings),
    debit_total       numeric(20, 4) NOT NULL CHECK (debit_total >= 0),
    credit_total      numeric(20, 4) NOT NULL CHECK (credit_total >= 0),
    rounding          numeric(20, 4) NOT NULL,   -- signed: + credited to the partner
    late_net          numeric(20, 4) NOT NULL,   -- credit - debit of the late postings
    net_amount        numeric(20, 4) GENERATED ALWAYS AS (credit_total - debit_total) STORED,
    rounding_transaction_id uuid REFERENCES ledger_transaction (transaction_id),
    checksum          text CHECK (checksum ~ '^[0-9a-f]{64}$'),
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    closed_at         timestamptz,
    CONSTRAINT one_batch_per_key_and_period UNIQUE (account, currency, period_kind, period_start),
    CHECK (period_end > period_start),
    CHECK (watermark >= prior_watermark),
    CHECK ((rounding = 0) = (rounding_transaction_id IS NULL)),
    CHECK (state <> 'CLOSED' OR (checksum IS NOT NULL AND closed_at IS NOT NULL))
);
CREATE INDEX settlement_batch_watermark ON settlement_batch (watermark);
CREATE INDEX settlement_batch_partner ON settlement_batch (partner, period_start);

-- Guarded transitions; a CLOSED batch is final; the key, period and watermarks never change.
CREATE FUNCTION settlement_batch_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'CLOSED' THEN
        RAISE EXCEPTION 'settlement batch % is CLOSED and immutable: % refused',
            OLD.batch_id, TG_OP USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (NEW.batch_id, NEW.run_id, NEW.account, NEW.currency, NEW.period_kind,
        NEW.period_start, NEW.period_end, NEW.settlement_tz, NEW.watermark,
        NEW.prior_watermark, NEW.created_at)
       IS DISTINCT FROM
       (OLD.batch_id, OLD.run_id, OLD.account, OLD.currency, OLD.period_kind,
        OLD.period_start, OLD.period_end, OLD.settlement_tz, OLD.watermark,
        OLD.prior_watermark, OLD.created_at) THEN
        RAISE EXCEPTION 'settlement batch %: key, period and watermarks never change',
            OLD.batch_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT ((OLD.state, NEW.state) IN (('OPEN', 'CLOSING'), ('CLOSING', 'CLOSED'),
                                       ('CLOSING', 'FAILED'), ('FAILED', 'OPEN'))) THEN
        RAISE EXCEPTION 'settlement batch %: transition % -> % refused',
            OLD.batch_id, OLD.state, NEW.state USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER settlement_batch_transitions BEFORE UPDATE ON settlement_batch
    FOR EACH ROW EXECUTE FUNCTION settlement_batch_guard();
CREATE TRIGGER settlement_batch_no_delete BEFORE DELETE ON settlement_batch
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER settlement_batch_no_truncate BEFORE TRUNCATE ON settlement_batch
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER settlement_run_no_truncate BEFORE TRUNCATE ON settlement_run
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_posting_no_truncate BEFORE TRUNCATE ON ledger_posting
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_transaction_no_truncate BEFORE TRUNCATE ON ledger_transaction
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- New batches are appended per key in period order, never overlapping, with watermarks that
-- never decrease and prior_watermark naming the previous batch's: membership stays a function.
CREATE FUNCTION settlement_batch_appended_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    SELECT n.batch_id INTO bad
      FROM new_batches n
      JOIN settlement_batch b
        ON b.account = n.account AND b.currency = n.currency
       AND b.period_kind = n.period_kind AND b.batch_id <> n.batch_id
     WHERE (b.period_start < n.period_end AND n.period_start < b.period_end)
        OR (b.period_start < n.period_start AND b.watermark > n.watermark)
        OR (b.period_start > n.period_start AND b.run_id < n.run_id)
     LIMIT 1;
    IF bad IS NULL THEN
        SELECT n.batch_id INTO bad
          FROM new_batches n
         WHERE n.prior_watermark <> COALESCE((
                SELECT max(b.watermark) FROM settlement_batch b
                 WHERE b.account = n.account AND b.currency = n.currency
                   AND b.period_kind = n.period_kind AND b.period_start < n.period_start), 0)
         LIMIT 1;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'settlement batch % overlaps, precedes or misnames its key''s batches',
            bad USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER settlement_batch_in_order AFTER INSERT ON settlement_batch
    REFERENCING NEW TABLE AS new_batches
    FOR EACH STATEMENT EXECUTE FUNCTION settlement_batch_appended_in_order();

-- Nothing is inserted at or below a closed watermark: that would change a closed batch's
-- membership. (Sequence-assigned ids are always above it; only a forged id is not.)
CREATE FUNCTION ledger_posting_above_watermark() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lowest bigint;
    closed bigint;
BEGIN
    SELECT min(posting_id) INTO lowest FROM new_postings;
    SELECT max(watermark) INTO closed FROM settlement_batch;
    IF lowest IS NOT NULL AND closed IS NOT NULL AND lowest <= closed THEN
        RAISE EXCEPTION 'posting id % is at or below the settlement watermark %',
            lowest, closed USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_posting_above_watermark AFTER INSERT ON ledger_posting
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_posting_above_watermark();

-- The postings of a batch, by the membership rule above (statements and verify read this).
CREATE FUNCTION settlement_batch_postings(b settlement_batch)
RETURNS SETOF ledger_posting LANGUAGE sql STABLE AS $$
    SELECT p.* FROM ledger_posting p
     WHERE p.account = b.account AND p.currency = b.currency
       AND p.settlement_period = b.period_kind
       AND p.posting_id <= b.watermark
       AND ((p.value_time >= b.period_start AND p.value_time < b.period_end)
            OR (p.value_time < b.period_start AND p.posting_id > b.prior_watermark))
$$;

-- Finance API bearer tokens, stored as sha256 of the token (random 32 bytes: no dictionary
-- to attack, so a slow password hash buys nothing; a lookup by hash stays one index probe).
CREATE TABLE finance_api_token (
    token_hash  text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    scope       text NOT NULL CHECK (scope IN ('FINANCE', 'PARTNER')),
    partner     text CHECK (partner ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((scope = 'PARTNER') = (partner IS NOT NULL))
);
CREATE TRIGGER finance_api_token_no_update BEFORE UPDATE ON finance_api_token
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
