-- Roles and privileges, re-applied after every migration run (yoyo's post-apply hook): every
-- object in the schema gets exactly the grants below. docs/security.md says who connects as
-- which role and how to map them on a managed PostgreSQL; tests/integration/test_roles.py
-- holds each role to what it may and may not do.
--
--   roamclear_owner     owns every table, view and function (NOLOGIN); migrations run as a
--                       superuser or a member of it
--   roamclear_worker    the clearing worker: reads reference data and the ledger, INSERTs into
--                       the append-only tables it writes; nothing else
--   roamclear_closer    `settle close|run`: reads the ledger, appends runs, batches and
--                       rounding transactions, moves batches through their states
--   roamclear_api       `roamclear api` (finance API and OCPI receiver): reads, and appends
--                       what partners deliver over HTTP and the tokens it issues them;
--                       opens and decides disputes (0018)
--   roamclear_reader    every read-only command: SELECT only
--   roamclear_operator  reference data, partner keys, API tokens, retries: INSERT only (and
--                       re-queueing dead CDR deliveries; opening and deciding disputes)
--   roamclear_deliverer `roamclear deliver`: reads bookings and connections, keeps the CDR
--                       delivery ledger (cdr_delivery, cdr_delivery_attempt)
--
-- Roles belong to the server, not the database: creating one that exists is skipped (two
-- databases migrating at once may race; the loser finds the role there).

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['roamclear_owner', 'roamclear_worker', 'roamclear_closer',
                                'roamclear_reader', 'roamclear_operator', 'roamclear_api',
                                'roamclear_deliverer'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I %s', name,
                               CASE name WHEN 'roamclear_owner' THEN 'NOLOGIN' ELSE 'LOGIN' END);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END;
$$;

-- Ownership: to roamclear_owner (a migrating non-superuser must be a member to hand it over).
DO $$
DECLARE
    object record;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'roamclear_owner', 'MEMBER') THEN
        EXECUTE format('GRANT roamclear_owner TO %I', current_user);
    END IF;
    FOR object IN
        SELECT c.oid::regclass AS name, c.relkind
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v')
           AND c.relname NOT LIKE '%yoyo%'
           AND c.relowner <> 'roamclear_owner'::regrole
    LOOP
        -- a table's serial sequences change owner with it
        EXECUTE format('ALTER %s %s OWNER TO roamclear_owner',
                       CASE object.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, object.name);
    END LOOP;
    FOR object IN
        SELECT p.oid::regprocedure AS name
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public' AND p.proowner <> 'roamclear_owner'::regrole
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO roamclear_owner', object.name);
    END LOOP;
END;
$$;

-- Start from nothing, so a grant removed here is removed from the database too.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM roamclear_worker, roamclear_closer,
    roamclear_reader, roamclear_operator, roamclear_api, roamclear_deliverer;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM roamclear_worker, roamclear_closer,
    roamclear_reader, roamclear_operator, roamclear_api, roamclear_deliverer;
REVOKE ALL ON FUNCTION settlement_lock_postings() FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO roamclear_worker, roamclear_closer, roamclear_reader,
    roamclear_operator, roamclear_api, roamclear_deliverer;

-- The worker.
GRANT SELECT ON partner, partner_version, tariff_version, location_version, agreement_version,
                partner_key, partner_key_revocation, ledger_transaction, ledger_posting,
                settlement_batch, tariff_lifecycle, location_zone
    TO roamclear_worker;  -- settlement_batch: the posting trigger reads the closed watermark
GRANT SELECT, INSERT ON raw_event TO roamclear_worker;  -- INSERT … RETURNING reads ids back
GRANT INSERT ON ledger_transaction, ledger_posting, rejection, cdr_outcome TO roamclear_worker;
GRANT USAGE ON SEQUENCE raw_event_archive_id_seq, rejection_rejection_id_seq,
                        ledger_posting_posting_id_seq
    TO roamclear_worker;

-- The closer.
GRANT SELECT ON ledger_transaction, ledger_posting, settlement_run, settlement_batch
    TO roamclear_closer;
GRANT INSERT ON settlement_run, settlement_batch, ledger_transaction, ledger_posting
    TO roamclear_closer;
GRANT UPDATE ON settlement_batch TO roamclear_closer;  -- state moves, guarded by its trigger
GRANT USAGE ON SEQUENCE settlement_run_run_id_seq, settlement_batch_batch_id_seq,
                        ledger_posting_posting_id_seq
    TO roamclear_closer;
GRANT EXECUTE ON FUNCTION settlement_lock_postings() TO roamclear_closer;

-- The reader: everything, read only.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO roamclear_reader;

-- The operator: reads everything, appends reference data, keys, tokens and retries.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO roamclear_operator;
GRANT INSERT ON partner_version, tariff_version, location_version, agreement_version,
                partner_key, partner_key_revocation, finance_api_token,
                finance_api_token_revocation, rejection_retry, ocpi_token, ocpi_token_revocation,
                location_zone
    TO roamclear_operator;

-- The API: reads everything, appends the tokens the OCPI handshake issues and revokes.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO roamclear_api;
GRANT INSERT ON ocpi_token, ocpi_token_revocation TO roamclear_api;

-- OCPI credentials (0011): the connection rows a handshake appends, by the partner's
-- credentials request (the API) or by `partners connect` (the operator).
GRANT INSERT ON ocpi_connection TO roamclear_api, roamclear_operator;

-- The API, OCPI tariffs and locations receivers (pipeline/ocpi/tariffs.py, locations.py):
-- the versions partners push (through the code path `tariffs publish` and `locations
-- publish` use), tariff deletions, and every body received.
GRANT INSERT ON tariff_version, tariff_lifecycle, location_version, location_zone,
                ocpi_reference_receipt
    TO roamclear_api;
GRANT USAGE ON SEQUENCE ocpi_reference_receipt_receipt_id_seq TO roamclear_api;

-- Sessions (0013): the API keeps every session push; the worker appends the session versions
-- it consumes and, while clearing, which session each CDR belongs to.
GRANT INSERT ON session_push TO roamclear_api;
GRANT USAGE ON SEQUENCE session_push_push_id_seq TO roamclear_api;
GRANT SELECT, INSERT ON session_version TO roamclear_worker;
GRANT SELECT ON session TO roamclear_worker;
GRANT INSERT ON cdr_session TO roamclear_worker;

-- The API, OCPI CDRs receiver (0012): every CDR body it receives, where the accepted ones
-- went on the topic, and the rejections at the door (stage `ingest`, no archive row).
GRANT INSERT ON ocpi_cdr_receipt, ocpi_cdr_published, rejection TO roamclear_api;
GRANT USAGE ON SEQUENCE rejection_rejection_id_seq TO roamclear_api;

-- CDR delivery to eMSPs (0016): the deliverer reads the bookings, their archived CDRs, the
-- partners' connections and the CPOs' correlation ids, and keeps the delivery ledger; the
-- operator re-queues dead deliveries (`deliveries retry`: those columns only).
GRANT SELECT ON ledger_transaction, raw_event, ocpi_connection, ocpi_connection_current,
                ocpi_cdr_receipt, cdr_delivery, cdr_delivery_attempt, cdr_delivery_waiting
    TO roamclear_deliverer;
GRANT INSERT, UPDATE ON cdr_delivery, cdr_delivery_attempt TO roamclear_deliverer;
GRANT INSERT, UPDATE, DELETE ON cdr_delivery_waiting TO roamclear_deliverer;  -- a queue (FOR UPDATE)
GRANT USAGE ON SEQUENCE cdr_delivery_delivery_id_seq TO roamclear_deliverer;
GRANT UPDATE (state, requeued_after, next_attempt_at) ON cdr_delivery
    TO roamclear_operator;

-- HubClientInfo (0017): the deliverer runs the still-alive checks and pushes ClientInfo.
GRANT SELECT ON partner, partner_version, hub_client_info, partner_liveness, client_info_push
    TO roamclear_deliverer;
GRANT INSERT ON partner_liveness, client_info_push TO roamclear_deliverer;
GRANT USAGE ON SEQUENCE partner_liveness_seq_seq TO roamclear_deliverer;

-- Disputes (0018): the operator (`roamclear disputes`) and the API (partners open and
-- withdraw, finance decides) open disputes and move them, through their guarded transitions.
GRANT INSERT ON dispute, dispute_transition TO roamclear_operator, roamclear_api;
GRANT UPDATE (state, transitions, credit_cdr_key) ON dispute TO roamclear_operator, roamclear_api;
GRANT USAGE ON SEQUENCE dispute_dispute_id_seq TO roamclear_operator, roamclear_api;
-- Accepting by a hub adjustment books one ADJUSTMENT transaction through this function alone
-- (SECURITY DEFINER; neither role may INSERT into the ledger).
REVOKE ALL ON FUNCTION dispute_accept_by_adjustment(bigint, numeric, text, text, timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dispute_accept_by_adjustment(bigint, numeric, text, text, timestamptz)
    TO roamclear_operator, roamclear_api;

-- Replays (0020): `roamclear replay --apply` books corrections as the clearing writer does (the
-- worker's role: it alone inserts CDR bookings) and records its run and what it booked.
GRANT SELECT, INSERT ON replay_run, replay_correction TO roamclear_worker;
GRANT USAGE ON SEQUENCE replay_run_run_id_seq, replay_correction_correction_id_seq
    TO roamclear_worker;
