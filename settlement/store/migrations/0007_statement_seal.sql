-- Statement seals: checksum version 2 (every figure a statement shows) and an HMAC with the
-- hub's statement key, chained per batch key (docs/settlement.md, "Checksum and seal").
-- depends: 0004_archive_storage
--
-- Batches closed before this migration keep checksum version 1 and no seal; they are never
-- rewritten (a CLOSED batch is immutable), and verify reports them as unsealed. Every batch
-- closed from now on is sealed: the trigger below refuses to close one without a seal, so a
-- closer of an older release cannot add unsealed batches after sealed ones.
--
-- The key is not in the database: PostgreSQL stores the seal, the id of the key that made
-- it and the link to the previous batch of the key, never the key itself.
ALTER TABLE settlement_batch
    ADD COLUMN checksum_version smallint NOT NULL DEFAULT 1
        CHECK (checksum_version IN (1, 2)),
    ADD COLUMN seal text CHECK (seal ~ '^[0-9a-f]{64}$'),
    ADD COLUMN seal_key_id text CHECK (seal_key_id ~ '^[a-z]+-[0-9a-f]{12}$'),
    -- the previous batch of the key when this one was sealed: 'seal:<its seal>',
    -- 'v1:<its checksum>' when it was closed before sealing, '-' when there was none
    ADD COLUMN seal_link text CHECK (seal_link ~ '^(-|v1:[0-9a-f]{64}|seal:[0-9a-f]{64})$'),
    ADD CONSTRAINT settlement_batch_sealed_is_v2 CHECK (
        (checksum_version = 2) = (seal IS NOT NULL AND seal_key_id IS NOT NULL
                                  AND seal_link IS NOT NULL));
-- existing rows are version 1; a new row must say which version it is
ALTER TABLE settlement_batch ALTER COLUMN checksum_version DROP DEFAULT;
-- the first sealed batch, which every verify and list looks up: an unsealed batch after it
-- was rewritten (settlement.batches.seal.check_seal)
CREATE INDEX settlement_batch_sealed ON settlement_batch (batch_id) WHERE checksum_version = 2;

CREATE FUNCTION settlement_batch_closes_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'CLOSED' AND NEW.checksum_version <> 2 THEN
        RAISE EXCEPTION 'settlement batch % would close unsealed: closers seal every batch '
            'since migration 0007 (upgrade the closer)', NEW.batch_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER settlement_batch_closes_sealed BEFORE INSERT OR UPDATE OF state
    ON settlement_batch FOR EACH ROW EXECUTE FUNCTION settlement_batch_closes_sealed();
