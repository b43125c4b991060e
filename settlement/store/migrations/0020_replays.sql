-- Replays (issue 14): `roamclear replay --apply` books what a replay found, and keeps which
-- run booked what. settlement/store/replay_apply.py writes these rows; docs/ops.md, "Replay".
-- depends: 0018_disputes 0019_trace_indexes
--
-- For an `amount_changed` CDR a run books two ADJUSTMENT transactions into the open period
-- (value time: the run's): the reversal of the booking in force (the original charge, or
-- the last correction's charge) and the new charge priced with the replay's reference data.
-- For a `now_booked` CDR it books the CHARGE clearing would have booked (under the CDR's
-- own key, so a re-send of it is a duplicate). Nothing already booked is changed: closed
-- batches stay as they are, and the corrections are late postings of the next open batch
-- when their value time says so.

-- One row per applied run, written in the transaction that books its corrections.
CREATE TABLE replay_run (
    run_id           bigserial PRIMARY KEY,
    topic            text NOT NULL,
    range_from       timestamptz NOT NULL,
    range_to         timestamptz NOT NULL,
    partner          text CHECK (partner ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    reference        text NOT NULL CHECK (reference IN ('as-booked', 'current', 'as-of')),
    reference_as_of  timestamptz,
    recorded_by      text NOT NULL CHECK (length(recorded_by) BETWEEN 1 AND 200),
    records          integer NOT NULL CHECK (records >= 0),
    changes          jsonb NOT NULL,          -- count per change (same, amount_changed, ...)
    corrections      integer NOT NULL CHECK (corrections >= 0),  -- CDRs this run booked
    applied_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (range_from < range_to),
    CHECK ((reference = 'as-of') = (reference_as_of IS NOT NULL))
);

-- What a run booked per CDR. The same correction of the same booking (the transaction it
-- corrects, for the same reference version: the replayed price's inputs and amounts) is
-- booked once, whoever applies it again: the unique constraint below. The ledger rows are
-- inserted after this row in the same transaction, hence the deferred references.
CREATE TABLE replay_correction (
    correction_id      bigserial PRIMARY KEY,
    run_id             bigint NOT NULL REFERENCES replay_run (run_id)
                           DEFERRABLE INITIALLY DEFERRED,
    archive_id         bigint NOT NULL REFERENCES raw_event (archive_id),
    cdr_key            text NOT NULL,
    change             text NOT NULL CHECK (change IN ('amount_changed', 'now_booked')),
    corrects           uuid REFERENCES ledger_transaction (transaction_id),  -- in force before
    reference_version  text NOT NULL,
    reversal_id        uuid REFERENCES ledger_transaction (transaction_id)
                           DEFERRABLE INITIALLY DEFERRED,
    charge_id          uuid NOT NULL REFERENCES ledger_transaction (transaction_id)
                           DEFERRABLE INITIALLY DEFERRED,
    CHECK ((change = 'amount_changed') = (corrects IS NOT NULL AND reversal_id IS NOT NULL)),
    CONSTRAINT one_correction_per_booking_and_reference
        UNIQUE NULLS NOT DISTINCT (archive_id, corrects, reference_version)
);
CREATE INDEX replay_correction_run ON replay_correction (run_id);
CREATE INDEX replay_correction_record ON replay_correction (archive_id, correction_id);
CREATE INDEX replay_correction_charge ON replay_correction (charge_id);
CREATE INDEX replay_correction_reversal ON replay_correction (reversal_id);

CREATE TRIGGER replay_run_append_only BEFORE UPDATE OR DELETE ON replay_run
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER replay_run_no_truncate BEFORE TRUNCATE ON replay_run
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER replay_correction_append_only BEFORE UPDATE OR DELETE ON replay_correction
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER replay_correction_no_truncate BEFORE TRUNCATE ON replay_correction
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
