-- The foundation: partners and the append-only archive of every event received.
-- depends:

CREATE TABLE partner (
    party_ref    text PRIMARY KEY CHECK (party_ref ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    role         text NOT NULL CHECK (role IN ('CPO', 'EMSP', 'BOTH')),
    name         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Every submitted event as received, with where the broker put it. Our own offset index:
-- the embedded broker's offsets_for_times is wrong, so replays by time read this table.
CREATE TABLE raw_event (
    archive_id        bigserial PRIMARY KEY,
    topic             text NOT NULL,
    partition         integer NOT NULL,
    "offset"          bigint NOT NULL,
    broker_timestamp  timestamptz,
    received_at       timestamptz NOT NULL DEFAULT now(),
    key               bytea,
    value             bytea,
    headers           jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX raw_event_position ON raw_event (topic, partition, "offset");
CREATE INDEX raw_event_time ON raw_event (topic, broker_timestamp);

-- Archive rows are evidence: never updated, never deleted.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER raw_event_append_only BEFORE UPDATE OR DELETE ON raw_event
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
