-- Statuses now go through the platform's common outbox (services.common.outbox), serialised
-- when they are recorded.
DROP TABLE notification_status_outbox;
