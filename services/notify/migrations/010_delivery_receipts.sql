-- Numbered 010: 009 is taken by a change made alongside (confidentiality and opposition).
-- Proof of delivery: what the platform's mailbox says of each notice after the SMTP hand-off
-- (services.notify.receipts). The ledger state stays the hand-off's outcome ('sent'); these
-- times say what came back: a DSN of delivery, a read receipt, a bounce. Each is set once, by
-- the first receipt saying so: a receipt read twice changes nothing.
-- A bounced notice (bounced_at set) is where a fallback to the recipient's next address starts.
ALTER TABLE notification ADD COLUMN delivered_at timestamptz;
ALTER TABLE notification ADD COLUMN read_at timestamptz;
ALTER TABLE notification ADD COLUMN bounced_at timestamptz;

-- Every message read from the mailbox, once (keyed by a digest of its bytes): matched to a
-- notice or not. Unmatched ones are counted here and kept in the mailbox for an operator.
CREATE TABLE notification_receipt (
    receipt_id      text        PRIMARY KEY,
    notification_id uuid,
    kind            text        NOT NULL CHECK (kind IN ('DELIVERED', 'READ', 'BOUNCED', 'UNMATCHED')),
    detail          text        NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notification_receipt_unmatched ON notification_receipt (received_at)
    WHERE kind = 'UNMATCHED';

-- Notices sent and still without a DSN are found by when they were sent.
CREATE INDEX notification_awaiting_receipt ON notification (sent_at)
    WHERE state = 'sent' AND delivered_at IS NULL AND bounced_at IS NULL;

-- The published view gains the receipts' times (new columns at its end, as a view allows).
CREATE OR REPLACE VIEW v_notices AS
SELECT notification_id, event_id, movement_key, establishment, kind, recipient_rpps, state,
       attempts, created_at, received_at, sent_at, delivered_at, read_at, bounced_at
FROM notification;
