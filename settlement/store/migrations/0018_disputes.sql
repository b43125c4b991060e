-- Disputes (issue 14): a partner says a booked CDR is wrong; the hub accepts (a credit CDR
-- from the CPO reverses it, or the hub books an ADJUSTMENT), declines (with its reasoning),
-- writes it off (accepted, settled outside the ledger), or the party that opened it withdraws
-- it. settlement/disputes.py holds
-- the same rules in Python; docs/disputes.md draws them.
-- depends: 0017_hub_client_info
--
--     open ──► accepted      (hub; the credit CDR that reverses the disputed one, or an
--       │                    ADJUSTMENT transaction: dispute_accept_by_adjustment below)
--       ├────► declined      (hub; the note is its reasoning)
--       ├────► written_off   (hub; accepted and settled outside the ledger)
--       └────► withdrawn     (the party that opened it)
--
-- A dispute row carries its current state; every state it was ever in is a row of
-- dispute_transition (who, when, why), appended in the same transaction as the state moves.
-- The triggers below keep the two in step: a state changes only along an allowed edge, only
-- with the history row that records it, and a dispute never touches a ledger row or a batch.

-- A hub adjustment: a balanced transaction of its own kind, booked by an accepted dispute
-- (dispute_accept_by_adjustment), linked to the dispute and the original in its rating.
ALTER TABLE ledger_transaction DROP CONSTRAINT ledger_transaction_kind_check;
ALTER TABLE ledger_transaction ADD CONSTRAINT ledger_transaction_kind_check
    CHECK (kind IN ('CHARGE', 'REVERSAL', 'ROUNDING', 'ADJUSTMENT'));

-- The edges, for both tables' guards (NULL -> open is a dispute's opening).
CREATE FUNCTION dispute_edge_allowed(from_state text, to_state text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT (from_state IS NULL AND to_state = 'open')
        OR (from_state = 'open'
            AND to_state IN ('accepted', 'declined', 'withdrawn', 'written_off'))
$$;

CREATE TABLE dispute (
    dispute_id      bigserial PRIMARY KEY,
    cdr_key         text NOT NULL REFERENCES ledger_transaction (cdr_key),  -- the CHARGE
    opened_by       text NOT NULL CHECK (opened_by ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    reason          text NOT NULL CHECK (reason IN ('AMOUNT_INCORRECT', 'TARIFF_INCORRECT',
                        'NOT_RECOGNISED', 'DUPLICATE', 'SESSION_DISPUTED', 'OTHER')),
    claimed_amount  numeric(20, 4) NOT NULL CHECK (claimed_amount > 0),
    currency        char(3) NOT NULL,                    -- the CDR's
    note            text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    state           text NOT NULL CHECK (state IN ('open', 'accepted', 'declined',
                        'withdrawn', 'written_off')),
    transitions     integer NOT NULL CHECK (transitions >= 1),  -- history rows so far
    credit_cdr_key  text REFERENCES ledger_transaction (cdr_key),  -- the accepting credit
    adjustment_id   uuid REFERENCES ledger_transaction (transaction_id),  -- or adjustment
    opened_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((state = 'accepted') = (credit_cdr_key IS NOT NULL OR adjustment_id IS NOT NULL)),
    CHECK (credit_cdr_key IS NULL OR adjustment_id IS NULL)
);
-- One open dispute per CDR and party: a second one is a UniqueViolation naming this index.
CREATE UNIQUE INDEX one_open_dispute_per_cdr_and_party ON dispute (cdr_key, opened_by)
    WHERE state = 'open';
CREATE INDEX dispute_opened_by ON dispute (opened_by, dispute_id);

CREATE TABLE dispute_transition (
    dispute_id   bigint NOT NULL REFERENCES dispute (dispute_id),
    seq          integer NOT NULL CHECK (seq >= 1),
    from_state   text,
    to_state     text NOT NULL,
    actor        text NOT NULL CHECK (actor = 'hub' OR actor ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    recorded_by  text NOT NULL CHECK (length(recorded_by) BETWEEN 1 AND 200),
    note         text NOT NULL CHECK (length(note) <= 2000),
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (dispute_id, seq),
    CHECK ((seq = 1) = (from_state IS NULL)),
    CHECK (seq = 1 OR length(btrim(note)) > 0),   -- every decision says why
    CHECK (dispute_edge_allowed(from_state, to_state))
);
CREATE TRIGGER dispute_transition_append_only BEFORE UPDATE OR DELETE ON dispute_transition
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER dispute_transition_no_truncate BEFORE TRUNCATE ON dispute_transition
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Opening: only a booked CHARGE, only by its CPO or its eMSP, in its currency, as `open`.
CREATE FUNCTION dispute_opening_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    booked record;
BEGIN
    SELECT kind, cpo, emsp, currency INTO booked
      FROM ledger_transaction WHERE cdr_key = NEW.cdr_key;
    IF booked.kind IS DISTINCT FROM 'CHARGE' THEN
        RAISE EXCEPTION 'dispute of %: only a booked CHARGE can be disputed', NEW.cdr_key
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.opened_by NOT IN (booked.cpo, booked.emsp) THEN
        RAISE EXCEPTION 'dispute of %: % is neither its CPO nor its eMSP', NEW.cdr_key,
            NEW.opened_by USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.currency <> booked.currency OR NEW.state <> 'open' OR NEW.transitions <> 1
       OR NEW.credit_cdr_key IS NOT NULL OR NEW.adjustment_id IS NOT NULL THEN
        RAISE EXCEPTION 'dispute of %: opens as open, in the CDR''s currency %, with no credit',
            NEW.cdr_key, booked.currency USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER dispute_opening BEFORE INSERT ON dispute
    FOR EACH ROW EXECUTE FUNCTION dispute_opening_guard();

-- Guarded transitions, like settlement_batch_guard: what was disputed never changes, a state
-- moves only along an allowed edge, with the history row that records it, and an accepting
-- credit must reverse the disputed CHARGE.
CREATE FUNCTION dispute_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.dispute_id, NEW.cdr_key, NEW.opened_by, NEW.reason, NEW.claimed_amount,
        NEW.currency, NEW.note, NEW.opened_at)
       IS DISTINCT FROM
       (OLD.dispute_id, OLD.cdr_key, OLD.opened_by, OLD.reason, OLD.claimed_amount,
        OLD.currency, OLD.note, OLD.opened_at) THEN
        RAISE EXCEPTION 'dispute %: what was disputed never changes', OLD.dispute_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NOT dispute_edge_allowed(OLD.state, NEW.state) THEN
        RAISE EXCEPTION 'dispute %: transition % -> % refused', OLD.dispute_id, OLD.state,
            NEW.state USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.transitions <> OLD.transitions + 1 OR NOT EXISTS (
        SELECT 1 FROM dispute_transition h
         WHERE h.dispute_id = OLD.dispute_id AND h.seq = NEW.transitions
           AND h.from_state = OLD.state AND h.to_state = NEW.state) THEN
        RAISE EXCEPTION 'dispute %: % -> % without its dispute_transition row', OLD.dispute_id,
            OLD.state, NEW.state USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.credit_cdr_key IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM ledger_transaction c JOIN ledger_transaction d
            ON d.transaction_id = c.reverses
         WHERE c.cdr_key = NEW.credit_cdr_key AND c.kind = 'REVERSAL'
           AND d.cdr_key = NEW.cdr_key) THEN
        RAISE EXCEPTION 'dispute %: credit % does not reverse %', OLD.dispute_id,
            NEW.credit_cdr_key, NEW.cdr_key USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.adjustment_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM ledger_transaction a
         WHERE a.transaction_id = NEW.adjustment_id AND a.kind = 'ADJUSTMENT'
           AND a.rating->>'dispute_id' = OLD.dispute_id::text
           AND a.rating->>'adjusts' = OLD.cdr_key) THEN
        RAISE EXCEPTION 'dispute %: transaction % is not its adjustment', OLD.dispute_id,
            NEW.adjustment_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER dispute_transitions BEFORE UPDATE ON dispute
    FOR EACH ROW EXECUTE FUNCTION dispute_guard();
CREATE TRIGGER dispute_no_delete BEFORE DELETE ON dispute
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER dispute_no_truncate BEFORE TRUNCATE ON dispute
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- History rows chain: each starts where the previous one ended; withdrawn is the opener's
-- decision, every other one after opening is the hub's.
CREATE FUNCTION dispute_transition_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    opener text;
BEGIN
    SELECT opened_by INTO opener FROM dispute WHERE dispute_id = NEW.dispute_id;
    IF NEW.seq > 1 AND NEW.from_state IS DISTINCT FROM (
        SELECT to_state FROM dispute_transition
         WHERE dispute_id = NEW.dispute_id AND seq = NEW.seq - 1) THEN
        RAISE EXCEPTION 'dispute %: history row % does not follow row %', NEW.dispute_id,
            NEW.seq, NEW.seq - 1 USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF (NEW.to_state IN ('open', 'withdrawn') AND NEW.actor <> opener)
       OR (NEW.to_state NOT IN ('open', 'withdrawn') AND NEW.actor <> 'hub') THEN
        RAISE EXCEPTION 'dispute %: % may not move it to %', NEW.dispute_id, NEW.actor,
            NEW.to_state USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER dispute_transition_chained BEFORE INSERT ON dispute_transition
    FOR EACH ROW EXECUTE FUNCTION dispute_transition_guard();

-- At commit: a dispute has its opening row, and no history row is ahead of its dispute (a row
-- whose state move never happened).
CREATE FUNCTION dispute_has_opening_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM dispute_transition WHERE dispute_id = NEW.dispute_id AND seq = 1) THEN
        RAISE EXCEPTION 'dispute % has no opening dispute_transition row', NEW.dispute_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER dispute_has_history AFTER INSERT ON dispute
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION dispute_has_opening_row();

CREATE FUNCTION dispute_transition_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq > (SELECT transitions FROM dispute WHERE dispute_id = NEW.dispute_id) THEN
        RAISE EXCEPTION 'dispute %: history row % records a move that did not happen',
            NEW.dispute_id, NEW.seq USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER dispute_transition_happened AFTER INSERT ON dispute_transition
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION dispute_transition_moved();

-- Accepting by a hub adjustment, in one call: the opener's account credited `amount` (at most
-- what it claimed) and the counterparty's debited, as a balanced ADJUSTMENT transaction with
-- value time `value_time` (now: the currently open period; an earlier time lands as a late
-- posting in the next open batch, flagged, never in a closed one), its history row, and the
-- state move. SECURITY DEFINER: the operator and the API may book this and no other
-- transaction (their roles have no INSERT on the ledger). Its id is derived from the dispute,
-- and cdr_key DISPUTE*<id> is unique: one adjustment per dispute, whoever calls twice.
CREATE FUNCTION dispute_accept_by_adjustment(
    which bigint, amount numeric, recorded_by text, note text,
    value_time timestamptz DEFAULT now())
RETURNS uuid LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d dispute;
    original ledger_transaction;
    counterparty text;
    adjustment uuid;
    gross_sign integer;
    excl_vat numeric;
BEGIN
    SELECT * INTO d FROM dispute WHERE dispute_id = which FOR UPDATE;
    SELECT * INTO original FROM ledger_transaction WHERE cdr_key = d.cdr_key;
    IF d.state IS DISTINCT FROM 'open' OR amount IS NULL OR amount <= 0
       OR amount > d.claimed_amount OR amount <> round(amount, 4)
       OR original.cpo = original.emsp
       OR value_time > now() OR value_time < original.session_end THEN
        RAISE EXCEPTION 'dispute %: an adjustment needs an open dispute between two parties, '
            'an amount above 0 and at most the claimed %, 4 decimals at most, and a value time '
            'between the CDR''s end and now', which, d.claimed_amount
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    counterparty := CASE d.opened_by WHEN original.cpo THEN original.emsp ELSE original.cpo END;
    -- the line's gross, signed as a statement reads it: the CDR's charge reduced when the
    -- eMSP is credited, increased when the CPO is
    gross_sign := CASE d.opened_by WHEN original.emsp THEN -1 ELSE 1 END;
    adjustment := md5('roamclear dispute adjustment ' || which)::uuid;
    -- excl. VAT in the original's proportion (its VAT rate), rounded half-up (numeric round)
    excl_vat := CASE original.amount_incl_vat WHEN 0 THEN amount
                ELSE round(amount * original.amount_excl_vat / original.amount_incl_vat, 4) END;
    INSERT INTO ledger_transaction (transaction_id, cdr_key, kind, content_hash, currency, cpo,
        emsp, session_start, session_end, location_id, energy_kwh, amount_excl_vat,
        amount_incl_vat, fee, rating)
    VALUES (adjustment, 'DISPUTE*' || which, 'ADJUSTMENT',
        encode(sha256(convert_to(d.cdr_key || '|' || which || '|' || amount, 'UTF8')), 'hex'),
        original.currency, original.cpo, original.emsp, original.session_start,
        original.session_end, original.location_id, 0,
        gross_sign * excl_vat, gross_sign * amount, 0,
        jsonb_build_object('dispute_id', which, 'adjusts', d.cdr_key,
                           'adjusts_transaction', original.transaction_id,
                           'original_value_time', original.session_end)
        -- one VAT rate on the original: the adjustment's VAT line shows it (signed as the
        -- line); several or none: the statement says "unknown"
        || CASE WHEN jsonb_typeof(original.rating->'vat_breakdown') = 'array'
                 AND jsonb_array_length(original.rating->'vat_breakdown') = 1
            THEN jsonb_build_object('vat_breakdown', jsonb_build_array(jsonb_build_object(
                'vat', original.rating->'vat_breakdown'->0->'vat',
                'excl_vat', (gross_sign * excl_vat)::text,
                'incl_vat', (gross_sign * amount)::text)))
            ELSE '{}'::jsonb END);
    -- both legs in one statement: the ledger checks each statement's transactions balance
    INSERT INTO ledger_posting (transaction_id, account, side, amount, currency, value_time,
        settlement_period)
    SELECT adjustment, 'partner:' || leg.party, leg.side, amount, original.currency, value_time,
           (SELECT p.settlement_period FROM ledger_posting p
             WHERE p.transaction_id = original.transaction_id
             ORDER BY p.account = 'partner:' || leg.party DESC, p.posting_id LIMIT 1)
      FROM (VALUES (d.opened_by, 'CREDIT'), (counterparty, 'DEBIT')) AS leg (party, side);
    INSERT INTO dispute_transition (dispute_id, seq, from_state, to_state, actor, recorded_by,
        note)
    VALUES (which, d.transitions + 1, 'open', 'accepted', 'hub', recorded_by, note);
    UPDATE dispute SET state = 'accepted', transitions = d.transitions + 1,
                       adjustment_id = adjustment
     WHERE dispute_id = which;
    RETURN adjustment;
END;
$$;
