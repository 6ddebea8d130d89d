"""Deduplication of stay events: drops resent messages and repeated movement actions read from
every ``stays.raw.*`` topic, and writes the unique events, in order within each stay, to
``stays.unique``."""
