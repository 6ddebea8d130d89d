"""Counts of stay events, notices and Covid-19 discharges per establishment and time window."""
