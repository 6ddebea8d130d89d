-- What notify must remember to say nothing of a stay or a patient (issue: confidentiality and
-- opposition). Both tables hold patient identifiers (IPP, INS), as the ledger's messages do; they
-- never leave notify's schema except through the operator functions below, which show ids only.

-- Each stay's patient and protection indicators, as its latest events said them: a later message
-- without PD1-12 or PV2-22 keeps what an earlier one said, and only an explicit N lifts it.
CREATE TABLE stay_privacy (
    stay_key          text        PRIMARY KEY,
    establishment     text        NOT NULL,
    ipp               text        NOT NULL,
    ins               text,            -- only a qualified INS (the gateway sends no other)
    patient_protected boolean,         -- PD1-12: true Y, false N, null never said
    stay_protected    boolean,         -- PV2-22: likewise
    protected_since   timestamptz,     -- when either first said Y (null while not protected)
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stay_privacy_by_ins ON stay_privacy (ins) WHERE ins IS NOT NULL;
CREATE INDEX stay_privacy_by_ipp ON stay_privacy (establishment, ipp);

-- The opposition register: a patient's objection to their practitioners being notified, recorded
-- by an establishment. Keyed by the qualified INS (then it applies in every establishment of the
-- GHT), else by the establishment's IPP (then only there). An objection lifted stays as a row
-- with lifted_at, so that the audit log's opposition ids keep pointing at something.
CREATE TABLE opposition (
    opposition_id bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    establishment text        NOT NULL,  -- the establishment that recorded it
    ins           text,
    ipp           text,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    lifted_at     timestamptz,
    CONSTRAINT opposition_one_key CHECK ((ins IS NULL) <> (ipp IS NULL))
);
CREATE UNIQUE INDEX opposition_active_ins ON opposition (ins)
    WHERE lifted_at IS NULL AND ins IS NOT NULL;
CREATE UNIQUE INDEX opposition_active_ipp ON opposition (establishment, ipp)
    WHERE lifted_at IS NULL AND ipp IS NOT NULL;

-- The stays an active objection covers: by INS across establishments, by IPP in its own.
CREATE VIEW opposed_stay AS
SELECT DISTINCT s.stay_key
FROM stay_privacy s
JOIN opposition o ON o.lifted_at IS NULL
    AND (o.ins = s.ins OR (o.ipp IS NOT NULL AND o.establishment = s.establishment AND o.ipp = s.ipp));

-- An objection recorded now: the patient's notices still waiting to go are held at once (no
-- delivery worker claims a notice due at infinity), and notify's sweeper records them as skipped
-- with the reason, publishing each status (services.notify.ledger.withdraw_withheld). Runs with
-- its owner's rights: the operator needs only EXECUTE, never the tables.
CREATE FUNCTION record_opposition(by_establishment text, patient_ins text, patient_ipp text)
    RETURNS TABLE (opposition_id bigint, created boolean, held integer)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
BEGIN
    SELECT o.opposition_id INTO opposition_id FROM opposition o
        WHERE o.lifted_at IS NULL
        AND (o.ins = patient_ins OR (patient_ins IS NULL AND o.establishment = by_establishment
                                     AND o.ipp = patient_ipp));
    created := NOT FOUND;
    IF created THEN
        INSERT INTO opposition (establishment, ins, ipp)
            VALUES (by_establishment, patient_ins, CASE WHEN patient_ins IS NULL THEN patient_ipp END)
            RETURNING opposition.opposition_id INTO opposition_id;
    END IF;
    UPDATE notification SET next_attempt_at = 'infinity'
        WHERE state IN ('pending', 'retrying')
        AND stay_key IN (SELECT stay_key FROM opposed_stay);
    GET DIAGNOSTICS held = ROW_COUNT;
    RETURN NEXT;
END
$$;

-- An objection withdrawn by the patient: notices skipped meanwhile stay skipped (they are not
-- sent late); notices held and not yet swept become due again.
CREATE FUNCTION lift_opposition(wanted bigint)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT
AS $$
DECLARE
    lifted boolean;
BEGIN
    UPDATE opposition SET lifted_at = now() WHERE opposition_id = wanted AND lifted_at IS NULL;
    lifted := FOUND;
    IF lifted THEN
        UPDATE notification SET next_attempt_at = now()
            WHERE state IN ('pending', 'retrying') AND next_attempt_at = 'infinity'
            AND stay_key NOT IN (SELECT stay_key FROM opposed_stay);
    END IF;
    RETURN lifted;
END
$$;

-- The active objections, ids only: no name, no birth date, nothing a stay says of the patient.
CREATE FUNCTION list_oppositions()
    RETURNS TABLE (opposition_id bigint, establishment text, ins text, ipp text,
                   recorded_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
AS $$
    SELECT o.opposition_id, o.establishment, o.ins, o.ipp, o.recorded_at FROM opposition o
    WHERE o.lifted_at IS NULL ORDER BY o.opposition_id
$$;

REVOKE EXECUTE ON FUNCTION record_opposition(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION lift_opposition(bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION list_oppositions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION record_opposition(text, text, text) TO notify_operator;
GRANT EXECUTE ON FUNCTION lift_opposition(bigint) TO notify_operator;
GRANT EXECUTE ON FUNCTION list_oppositions() TO notify_operator;

-- What make run's checks read (notify_reader, like v_notices): each stay withheld from everyone,
-- since when and why, and how many of its notices were handed to the SMTP server after that
-- (there must be none). Stay keys and counts only, never the patient's identifiers.
CREATE VIEW v_withheld_stays AS
WITH withheld AS (
    SELECT s.stay_key, s.establishment, s.protected_since,
           (SELECT min(o.recorded_at) FROM opposition o WHERE o.lifted_at IS NULL
                AND (o.ins = s.ins OR (o.ipp IS NOT NULL AND o.establishment = s.establishment
                                       AND o.ipp = s.ipp))) AS opposed_since
    FROM stay_privacy s
)
SELECT w.stay_key, w.establishment,
       w.protected_since IS NOT NULL AS protected,
       w.opposed_since IS NOT NULL AS opposed,
       least(w.protected_since, w.opposed_since) AS withheld_since,
       (SELECT count(*) FROM notification n WHERE n.stay_key = w.stay_key
            AND n.state IN ('sending', 'sent', 'uncertain')
            AND n.claimed_at >= least(w.protected_since, w.opposed_since)) AS sent_since
FROM withheld w
WHERE w.protected_since IS NOT NULL OR w.opposed_since IS NOT NULL;

GRANT SELECT ON v_withheld_stays TO notify_reader;
