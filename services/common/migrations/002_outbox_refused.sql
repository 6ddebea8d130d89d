-- Outbox rows Kafka refused on their own account (too large, invalid), set aside whole after a
-- few tries so that the rows behind them are published (services.common.outbox).
CREATE TABLE outbox_refused (
    id          bigint      PRIMARY KEY,
    owner       text        NOT NULL,
    topic       text        NOT NULL,
    key         bytea,
    value       bytea,
    created_at  timestamptz NOT NULL,
    error_code  text        NOT NULL,
    refused_at  timestamptz NOT NULL DEFAULT now()
);
