-- Numbered 012 after main's 011 (digests).
-- Fallback chains (services.notify.chain): a notice that bounced or failed for good is followed
-- by the next step of its recipient's chain, a notice of its own with its own id; each notice
-- keeps the steps still ahead of it (enrich's Recipient.fallback), its place in the chain and
-- the notice that followed it. A unit code is kept with each notice for the worklist.
ALTER TABLE notification ADD COLUMN fallback jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE notification ADD COLUMN chain_step integer NOT NULL DEFAULT 0;
ALTER TABLE notification ADD COLUMN successor_id uuid;
ALTER TABLE notification ADD COLUMN unit text;

-- What no chain could deliver, and every stay event no GP could be found for: ids and reasons,
-- never patient data. One entry per notice or per event (entry_id), whatever is replayed.
-- occurred_at is the movement's time: the monthly rates count events by it, as analytics does.
CREATE TABLE worklist (
    entry_id        text        PRIMARY KEY,
    establishment   text        NOT NULL,
    unit            text,
    stay_key        text        NOT NULL,
    event_id        text        NOT NULL,
    notification_id uuid,
    reason          text        NOT NULL
        CHECK (reason IN ('NO_GP', 'UNKNOWN_RPPS', 'NO_SECURE_ADDRESS', 'OTHER', 'BOUNCED', 'FAILED')),
    detail          text        NOT NULL,
    occurred_at     timestamptz,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz
);

CREATE INDEX worklist_open ON worklist (establishment, unit) WHERE resolved_at IS NULL;
CREATE INDEX worklist_event ON worklist (event_id) WHERE notification_id IS NULL;

-- For the dashboard (by establishment and unit, monthly rates) and the run's checks.
CREATE VIEW v_worklist AS
SELECT entry_id, establishment, unit, stay_key, event_id, notification_id, reason, detail,
       occurred_at, recorded_at, resolved_at
FROM worklist;

GRANT SELECT ON v_worklist TO notify_reader;

-- Each notice's place in its chain, beside its outcome.
CREATE OR REPLACE VIEW v_notices AS
SELECT notification_id, event_id, movement_key, establishment, kind, recipient_rpps, state,
       attempts, created_at, received_at, sent_at, delivered_at, read_at, bounced_at,
       chain_step, successor_id
FROM notification;
