-- Daily digests (services.notify.digests). A notice a recipient's choices defer is a ledger row
-- in the new state 'deferred': never sent alone, its message is its line of the digest (the
-- line's fields as JSON), `digest_id` names the digest listing it and `occurred_at` orders the
-- lines. The digest itself is a notice like any other (kind DIGEST, id uuid5 of recipient and
-- day), pending until its hour (next_attempt_at): the same claim, the same at-most-once. While
-- it waits (pending, never attempted) its message is rendered again at each line added or
-- withdrawn; once taken for sending it changes no more, and later lines go in the next day's.
--   deferred   listed in the digest `digest_id`; what became of it is that digest's state
-- A digest whose every line was withdrawn is skipped; a line added later the same day makes it
-- pending again.
--
-- The state check is widened by adding 'deferred' to whatever list it holds, not restated:
-- other migrations add states of their own (proof of delivery), in any order with this one.
DO $$
DECLARE
    states text;
BEGIN
    SELECT pg_get_constraintdef(oid) INTO states FROM pg_constraint
        WHERE conrelid = 'notification'::regclass AND conname = 'notification_state_check';
    ALTER TABLE notification DROP CONSTRAINT notification_state_check;
    EXECUTE 'ALTER TABLE notification ADD CONSTRAINT notification_state_check '
        || replace(states, '''uncertain''::text', '''uncertain''::text, ''deferred''::text');
END
$$;

ALTER TABLE notification ADD COLUMN digest_id uuid;
ALTER TABLE notification ADD COLUMN occurred_at timestamptz;

CREATE INDEX notification_by_digest ON notification (digest_id, occurred_at, seq)
    WHERE digest_id IS NOT NULL;

-- Which digest lists each deferred notice, for the run's checks (ids only; notify_reader, as
-- v_notices). A view of its own: v_notices is extended by other migrations in parallel.
CREATE VIEW v_digest_lines AS
SELECT notification_id, event_id, movement_key, kind, recipient_rpps, state, digest_id
FROM notification WHERE digest_id IS NOT NULL;

GRANT SELECT ON v_digest_lines TO notify_reader;

-- The end of a simulated day (make run) or an operator's "send the digests now": every digest
-- still waiting for its hour is due at once. Nothing else changes; a digest already taken for
-- sending is left alone. Runs with notify's rights, for notify's operators only.
CREATE FUNCTION send_digests_now() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
DECLARE
    moved integer;
BEGIN
    UPDATE notification SET next_attempt_at = now(), updated_at = now()
        WHERE kind = 'DIGEST' AND state = 'pending' AND next_attempt_at > now();
    GET DIAGNOSTICS moved = ROW_COUNT;
    RETURN moved;
END
$$;
REVOKE EXECUTE ON FUNCTION send_digests_now() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION send_digests_now() TO notify_operator;
