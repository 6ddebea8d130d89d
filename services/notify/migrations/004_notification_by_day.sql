-- The dashboard and run summaries count notices by when they were created.
CREATE INDEX notification_by_created_at ON notification (created_at);
