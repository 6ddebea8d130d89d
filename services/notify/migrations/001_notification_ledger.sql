-- The ledger: one row per (event, recipient, notice kind), keyed by its deterministic id.
-- A row is written, with the rendered message, before the input offset is committed; the
-- delivery workers send from here. States:
--   pending    to send (next_attempt_at says when)
--   retrying   a transient failure; to send again at next_attempt_at
--   sending    handed to the SMTP server, outcome not yet recorded
--   sent       the SMTP server accepted it
--   failed     a permanent failure, or given up
--   skipped    deliberately not sent (opt-out, address outside the secure domains, cancelled
--              or superseded before it was sent)
--   uncertain  found in 'sending' after a crash: it may have gone out; never resent
CREATE TABLE notification (
    notification_id   uuid        PRIMARY KEY,
    event_id          text        NOT NULL,
    stay_key          text        NOT NULL,
    establishment     text        NOT NULL,
    movement_key      text        NOT NULL,
    kind              text        NOT NULL,
    recipient_rpps    text        NOT NULL,
    recipient_address text        NOT NULL,
    message_id        text        NOT NULL,
    message           bytea       NOT NULL,
    state             text        NOT NULL CHECK (state IN
                          ('pending', 'retrying', 'sending', 'sent', 'failed', 'skipped', 'uncertain')),
    attempts          integer     NOT NULL DEFAULT 0,
    -- When a delivery worker took it ('sending'); a row left there past the lease is uncertain.
    claimed_at        timestamptz,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    smtp_code         integer,
    detail            text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notification_due ON notification (next_attempt_at) WHERE state IN ('pending', 'retrying');
CREATE INDEX notification_by_movement ON notification (movement_key, recipient_rpps);

-- Every state change to publish on notifications.status, written in the same transaction as the
-- change and deleted once Kafka has confirmed the record: no outcome is lost to a crash.
CREATE TABLE notification_status_outbox (
    id              bigserial   PRIMARY KEY,
    notification_id uuid        NOT NULL REFERENCES notification,
    status          text        NOT NULL,
    attempt         integer     NOT NULL,
    smtp_code       integer,
    detail          text,
    at              timestamptz NOT NULL DEFAULT now()
);
