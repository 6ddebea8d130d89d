-- Changes now go through the platform's common transactional outbox (services.common.outbox).
DROP TABLE practitioner_outbox;

-- The import deletes the mailboxes of removed practitioners itself, in the same statement set;
-- a per-row foreign-key check only slowed the bulk insert of a first import down.
ALTER TABLE mailbox DROP CONSTRAINT mailbox_rpps_fkey;
