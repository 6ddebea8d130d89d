-- Counts for analysts, mirrored from the compacted analytics.* topics: one row per published key
-- (metric, granularity, window start, establishment, dimensions), overwritten by each newer
-- record, so replaying the topics gives the same rows. No patient data.

CREATE TABLE analytics_counts (
    key             text        PRIMARY KEY,
    metric          text        NOT NULL,
    granularity     text        NOT NULL CHECK (granularity IN ('HOUR', 'DAY')),
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    establishment   text        NOT NULL,
    event_kind      text,
    action          text,
    admission_mode  text,
    delivery_status text,
    covid_status    text,
    count           bigint      NOT NULL CHECK (count >= 0),
    updated_at      timestamptz NOT NULL
);

CREATE INDEX analytics_counts_by_window
    ON analytics_counts (metric, granularity, window_start, establishment);

COMMENT ON TABLE analytics_counts IS
    'Counts per event-time window (UTC hours and UTC days) and dimensions, as on the analytics.* topics. metric: stay_events (every stay event), unroutable_stay_events (those no GP could receive, a part of stay_events), notifications (notices by final delivery status), covid_discharges (discharges by Covid-19 status).';

-- Days below are local days in France, summed from the hourly counts: Paris is a whole number
-- of hours from UTC, so every hour falls in exactly one local day.

CREATE VIEW daily_stays AS
SELECT (window_start AT TIME ZONE 'Europe/Paris')::date AS day,
       establishment,
       coalesce(sum(count) FILTER (WHERE metric = 'stay_events'), 0)::bigint AS stay_events,
       coalesce(sum(count) FILTER (
           WHERE metric = 'stay_events' AND event_kind = 'ADMISSION' AND action = 'INSERT'
       ), 0)::bigint AS admissions,
       coalesce(sum(count) FILTER (
           WHERE metric = 'stay_events' AND event_kind = 'ADMISSION' AND action = 'INSERT'
             AND admission_mode = 'EMERGENCY'
       ), 0)::bigint AS emergency_admissions,
       coalesce(sum(count) FILTER (
           WHERE metric = 'stay_events' AND event_kind = 'ADMISSION' AND action = 'INSERT'
             AND admission_mode = 'SCHEDULED'
       ), 0)::bigint AS scheduled_admissions,
       coalesce(sum(count) FILTER (
           WHERE metric = 'stay_events' AND event_kind = 'TRANSFER' AND action = 'INSERT'
       ), 0)::bigint AS transfers,
       coalesce(sum(count) FILTER (
           WHERE metric = 'stay_events' AND event_kind = 'DISCHARGE' AND action = 'INSERT'
       ), 0)::bigint AS discharges,
       coalesce(sum(count) FILTER (
           WHERE metric = 'stay_events' AND action = 'UPDATE'
       ), 0)::bigint AS corrections,
       coalesce(sum(count) FILTER (
           WHERE metric = 'stay_events' AND action = 'CANCEL'
       ), 0)::bigint AS cancellations,
       coalesce(sum(count) FILTER (WHERE metric = 'unroutable_stay_events'), 0)::bigint
           AS unroutable
FROM analytics_counts
WHERE granularity = 'HOUR' AND metric IN ('stay_events', 'unroutable_stay_events')
GROUP BY 1, 2;

COMMENT ON VIEW daily_stays IS
    'Stay events per local day (Europe/Paris) and establishment; unroutable: no GP could be told.';

CREATE VIEW daily_notifications AS
SELECT (window_start AT TIME ZONE 'Europe/Paris')::date AS day,
       establishment,
       coalesce(sum(count) FILTER (WHERE delivery_status = 'SENT'), 0)::bigint AS sent,
       coalesce(sum(count) FILTER (WHERE delivery_status = 'FAILED'), 0)::bigint AS failed,
       coalesce(sum(count) FILTER (WHERE delivery_status = 'SKIPPED'), 0)::bigint AS skipped
FROM analytics_counts
WHERE granularity = 'HOUR' AND metric = 'notifications'
GROUP BY 1, 2;

COMMENT ON VIEW daily_notifications IS
    'Notices per local day (Europe/Paris) of their final status, and establishment.';

CREATE VIEW daily_covid_discharges AS
SELECT (window_start AT TIME ZONE 'Europe/Paris')::date AS day,
       establishment,
       coalesce(sum(count), 0)::bigint AS discharges,
       coalesce(sum(count) FILTER (WHERE covid_status = 'POSITIVE'), 0)::bigint AS positive,
       coalesce(sum(count) FILTER (WHERE covid_status = 'SUSPECTED'), 0)::bigint AS suspected,
       coalesce(sum(count) FILTER (WHERE covid_status = 'NEGATIVE'), 0)::bigint AS negative,
       coalesce(sum(count) FILTER (WHERE covid_status = 'NOT_TESTED'), 0)::bigint AS not_tested,
       coalesce(sum(count) FILTER (WHERE covid_status = 'UNKNOWN'), 0)::bigint AS unknown
FROM analytics_counts
WHERE granularity = 'HOUR' AND metric = 'covid_discharges'
GROUP BY 1, 2;

COMMENT ON VIEW daily_covid_discharges IS
    'Discharges per local day (Europe/Paris) and establishment, by Covid-19 status at discharge.';
