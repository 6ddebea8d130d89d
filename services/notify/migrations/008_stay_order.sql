-- Notices of one stay reach a GP in the order their events came: a notice waits while an
-- earlier one of the same stay to the same address is still to be sent, being sent or to be
-- retried (services.notify.ledger.claim_due). `seq` is that order: the ledger records a stay's
-- events in their partition's order (one partition per stay key), several in one transaction
-- whose now() they share, so the time of creation cannot tell them apart.
ALTER TABLE notification ADD COLUMN seq bigserial;

CREATE INDEX notification_waiting_by_stay ON notification (stay_key, recipient_address, seq)
    WHERE state IN ('pending', 'retrying', 'sending');
