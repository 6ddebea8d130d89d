-- What analytics publishes to other principals (the dashboard, the run summary and its checks):
-- the counts as on the analytics.* topics, and the analysts' daily views, which keep their names.
-- Readers are the members of analytics_reader (deploy/access.toml, `views_of`).
CREATE VIEW v_counts AS
SELECT metric, granularity, window_start, window_end, establishment, event_kind, action,
       admission_mode, delivery_status, covid_status, count, updated_at
FROM analytics_counts;

GRANT SELECT ON v_counts, daily_stays, daily_notifications, daily_covid_discharges
    TO analytics_reader;
