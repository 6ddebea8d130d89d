"""The web dashboard for analysts and operators: the day's stays per establishment and hour,
emails sent and failed, open Covid-19 follow-ups and each service's consumer lag.

It only reads: the analytics, notify and covid tables in PostgreSQL, and consumer offsets from
Kafka. It never selects a column that holds patient data.
"""
