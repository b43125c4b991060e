-- OCPI 2.2.1 HubClientInfo: which parties are reachable through the hub, and in which state
-- (pipeline/delivery/client_info.py).
-- depends: 0016_deliveries
--
-- A party's ClientInfo status follows from what the hub knows:
--   PLANNED    a partner the operator registered that never connected over OCPI
--   CONNECTED  registered over OCPI, and its versions endpoint answered the last still-alive
--              check made since (or none was made yet)
--   OFFLINE    registered, but the last still-alive check since its registration failed
--   SUSPENDED  its connection was ended (credentials DELETE, `partners disconnect`)
-- partner_liveness keeps every change of reachability the still-alive check saw (not every
-- check): when and why a partner went OFFLINE, and when it came back.
CREATE TABLE partner_liveness (
    seq         bigserial PRIMARY KEY,
    partner     text NOT NULL CHECK (partner ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    reachable   boolean NOT NULL,
    url         text NOT NULL,
    error       text,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX partner_liveness_partner ON partner_liveness (partner, seq);
CREATE TRIGGER partner_liveness_append_only BEFORE UPDATE OR DELETE ON partner_liveness
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER partner_liveness_no_truncate BEFORE TRUNCATE ON partner_liveness
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

CREATE VIEW hub_client_info AS
    SELECT p.party_ref AS partner,
           p.role,
           CASE WHEN c.partner IS NULL THEN 'PLANNED'
                WHEN c.event = 'UNREGISTERED' THEN 'SUSPENDED'
                WHEN l.reachable IS FALSE AND l.at >= c.created_at THEN 'OFFLINE'
                ELSE 'CONNECTED' END AS status,
           greatest(p.created_at, c.created_at,
                    CASE WHEN l.at >= c.created_at THEN l.at END) AS last_updated
      FROM partner p
      LEFT JOIN ocpi_connection_current c ON c.partner = p.party_ref
      LEFT JOIN LATERAL (
          SELECT reachable, at FROM partner_liveness
           WHERE partner = p.party_ref ORDER BY seq DESC LIMIT 1) l ON true;

-- Every ClientInfo the hub PUT to a connected party's hubclientinfo endpoint and the party
-- accepted: a subject's state is pushed to each receiver once per change (last_updated).
CREATE TABLE client_info_push (
    receiver      text NOT NULL CHECK (receiver ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    subject       text NOT NULL CHECK (subject ~ '^[A-Z]{2}\*[A-Z0-9]{3}$'),
    status        text NOT NULL CHECK (status IN ('CONNECTED', 'OFFLINE', 'PLANNED', 'SUSPENDED')),
    last_updated  timestamptz NOT NULL,
    request_id    text NOT NULL,
    pushed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (receiver, subject, last_updated)
);
CREATE TRIGGER client_info_push_append_only BEFORE UPDATE OR DELETE ON client_info_push
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER client_info_push_no_truncate BEFORE TRUNCATE ON client_info_push
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
