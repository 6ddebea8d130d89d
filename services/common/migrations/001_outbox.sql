-- The transactional outbox: records to publish, written in the same transaction as the state
-- change they announce, and deleted once Kafka has confirmed them (services.common.outbox).
CREATE TABLE outbox (
    id         bigserial   PRIMARY KEY,
    owner      text        NOT NULL,
    topic      text        NOT NULL,
    key        bytea,
    value      bytea,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_by_owner ON outbox (owner, id);
