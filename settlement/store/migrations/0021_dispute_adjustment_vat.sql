-- An adjustment's VAT lines at its original's rates (issue 14). Until now a hub adjustment
-- carried a VAT line only when its original had exactly one line in its breakdown; a charge
-- whose settled amount differs from its priced components (a min/max price, the CPO's
-- declared total, rounding) has a second line without a rate (`"adjustment": true`), so its
-- adjustments showed "unknown" on statements. dispute_adjustment_vat splits the adjustment
-- over the original's rates; dispute_accept_by_adjustment (0018) is the same but for that.
-- depends: 0018_disputes 0020_replays

-- The VAT lines of an adjustment of `incl_vat` (excl. `excl_vat`, both signed as the line)
-- from its original's breakdown: each rate's share in proportion to what the original
-- charged at it, the last rate taking what rounding leaves, so the lines add up to the
-- adjustment exactly (4 decimals, half-up: numeric round). The original's rest line (no
-- rate, `"adjustment": true`) counts at its rate when the original has exactly one; a line
-- without a rate otherwise stays without one. NULL (no breakdown) when the original has none,
-- a malformed one, or charged nothing.
--     [{"vat": "21", "incl_vat": "19.98"}, {"vat": null, "incl_vat": "0.02", "adjustment":
--     true}] and -4.00 / -3.3058  ->  [{"vat": "21", "excl_vat": "-3.3058", "incl_vat": "-4.00"}]
CREATE FUNCTION dispute_adjustment_vat(original jsonb, incl_vat numeric, excl_vat numeric)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    WITH line AS (
        SELECT l->>'vat' AS vat, coalesce((l->>'adjustment')::boolean, false) AS rest,
               CASE WHEN jsonb_typeof(l->'incl_vat') IN ('string', 'number')
                         AND (l->>'incl_vat') ~ '^-?[0-9]+(\.[0-9]+)?$'
                    THEN (l->>'incl_vat')::numeric END AS incl
          FROM jsonb_array_elements(CASE WHEN jsonb_typeof(original) = 'array'
                                         THEN original ELSE '[]'::jsonb END) AS l),
    one AS (SELECT CASE WHEN count(DISTINCT vat) = 1 THEN min(vat) END AS rate FROM line),
    rate AS (
        SELECT CASE WHEN line.rest AND line.vat IS NULL THEN one.rate ELSE line.vat END AS vat,
               sum(line.incl) AS incl
          FROM line CROSS JOIN one GROUP BY 1),
    share AS (
        SELECT vat, row_number() OVER (ORDER BY vat NULLS LAST) AS n, count(*) OVER () AS rates,
               round(incl_vat * incl / sum(incl) OVER (), 4) AS incl_part,
               round(excl_vat * incl / sum(incl) OVER (), 4) AS excl_part
          FROM rate
         WHERE (SELECT bool_and(incl IS NOT NULL) AND sum(incl) <> 0 FROM line)),
    part AS (
        SELECT vat, n,
               CASE WHEN n = rates THEN incl_vat - (sum(incl_part) OVER () - incl_part)
                    ELSE incl_part END AS incl,
               CASE WHEN n = rates THEN excl_vat - (sum(excl_part) OVER () - excl_part)
                    ELSE excl_part END AS excl
          FROM share)
    SELECT jsonb_agg(jsonb_build_object('vat', vat, 'excl_vat', excl::text,
                                        'incl_vat', incl::text) ORDER BY n)
      FROM part
$$;

CREATE OR REPLACE FUNCTION dispute_accept_by_adjustment(
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
    vat_lines jsonb;
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
    -- its VAT lines at the original's rates (none: the statement says "unknown")
    vat_lines := dispute_adjustment_vat(original.rating->'vat_breakdown', gross_sign * amount,
                                        gross_sign * excl_vat);
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
        || CASE WHEN vat_lines IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('vat_breakdown', vat_lines) END);
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
