-- Discharges now count under their latest Covid-19 status: a correction moves a discharge to
-- its new status, a cancelled discharge is no longer counted.
COMMENT ON VIEW daily_covid_discharges IS
    'Discharges per local day (Europe/Paris) and establishment, by their latest Covid-19 status '
    '(corrections applied, cancelled discharges left out).';
