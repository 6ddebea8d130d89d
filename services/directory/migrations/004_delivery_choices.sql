-- Which notices a practitioner wants and when (services.common.preferences): the kinds of events
-- (NULL: the defaults, transfers off), real time, a daily digest at an hour of Europe/Paris, or
-- discharges only. NULL digest_hour: the default hour.
ALTER TABLE practitioner_preferences
    ADD COLUMN event_kinds text[]
        CHECK (event_kinds <@ ARRAY['ADMISSION', 'TRANSFER', 'DISCHARGE', 'CORRECTION']),
    ADD COLUMN mode text NOT NULL DEFAULT 'REALTIME'
        CHECK (mode IN ('REALTIME', 'DIGEST', 'DISCHARGES_ONLY')),
    ADD COLUMN digest_hour smallint CHECK (digest_hour BETWEEN 0 AND 23);
