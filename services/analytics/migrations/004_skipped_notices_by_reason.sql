-- Skipped notices by reason and notice kind (metric skipped_notifications): the reason's code
-- (services/common/skip_reasons.py), never a notice's detail. No patient data.
ALTER TABLE analytics_counts ADD COLUMN skip_reason text, ADD COLUMN notice_kind text;

CREATE OR REPLACE VIEW v_counts AS
SELECT metric, granularity, window_start, window_end, establishment, event_kind, action,
       admission_mode, delivery_status, covid_status, count, updated_at, skip_reason, notice_kind
FROM analytics_counts;

-- Local days in France, as the other daily views.
CREATE VIEW daily_skipped_notifications AS
SELECT (window_start AT TIME ZONE 'Europe/Paris')::date AS day, establishment, skip_reason,
       notice_kind, sum(count)::bigint AS skipped
FROM analytics_counts
WHERE metric = 'skipped_notifications' AND granularity = 'HOUR'
GROUP BY 1, 2, 3, 4;

GRANT SELECT ON daily_skipped_notifications TO analytics_reader;
