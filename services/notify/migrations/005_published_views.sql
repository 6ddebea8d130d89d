-- What notify publishes to other principals (the dashboard, the run summary and its checks):
-- each notice's ids, kind, state and times. Never the rendered message, the recipient's address
-- or the SMTP server's reply. Who reads it is declared in deploy/access.toml (`views_of`), which
-- makes them members of notify_reader; the view runs with notify's rights, so they need none on
-- the ledger itself.
CREATE VIEW v_notices AS
SELECT notification_id, event_id, movement_key, establishment, kind, recipient_rpps, state,
       attempts, created_at, received_at, sent_at
FROM notification;

GRANT SELECT ON v_notices TO notify_reader;
