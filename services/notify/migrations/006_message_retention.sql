-- Retention by purpose: a notice's rendered message (the patient's identity and clinical
-- context) is kept NOTIFY_RETENTION_DAYS after its final status, to be resent or looked into,
-- then purged; the status trail (ids, states, attempts, SMTP codes, times) stays.
-- updated_at is the time of the final status: a row in a final state changes no more, except
-- when an operator asks for a resend, which makes it pending again.
ALTER TABLE notification ALTER COLUMN message DROP NOT NULL;
ALTER TABLE notification ADD COLUMN message_purged_at timestamptz;
ALTER TABLE notification ADD CONSTRAINT notification_message_kept_or_purged
    CHECK ((message IS NULL) = (message_purged_at IS NOT NULL));

CREATE INDEX notification_message_to_purge ON notification (updated_at)
    WHERE message IS NOT NULL AND state IN ('sent', 'failed', 'skipped', 'uncertain');

-- An operator's resend of a dead-lettered notice (harpicoop replay-dead-letters
-- deadletter.notify): the dead letter holds only the notification id, and this is the one way
-- to act on the row it names. A failed or uncertain notice whose message is still kept goes
-- back to pending for the delivery workers; nothing else changes. It runs with its owner's
-- rights and search path, so the operator needs only EXECUTE on it, never the ledger itself.
CREATE FUNCTION request_resend(wanted uuid, dry_run boolean DEFAULT false)
    RETURNS TABLE (outcome text, found_state text, purged_at timestamptz)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
BEGIN
    SELECT n.state, n.message_purged_at INTO found_state, purged_at
        FROM notification n WHERE n.notification_id = wanted FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'unknown';
    ELSIF purged_at IS NOT NULL THEN
        outcome := 'purged';
    ELSIF found_state NOT IN ('failed', 'uncertain') THEN
        outcome := 'not_failed';
    ELSE
        outcome := 'resending';
        IF NOT dry_run THEN
            UPDATE notification SET state = 'pending', next_attempt_at = now(), claimed_at = NULL,
                detail = 'resend requested by an operator', updated_at = now()
                WHERE notification_id = wanted;
        END IF;
    END IF;
    RETURN NEXT;
END
$$;
