"""The HL7 v2 MLLP gateway: establishments' ADT (IHE PAM FR) in, StayEvents on Kafka out.

Pure logic: ``hl7`` (parsing), ``mllp`` (framing), ``pam`` (mapping), ``covid`` (status table),
``ack`` (acknowledgements), ``intake`` (what to do with one message). Adapters: ``kafka_writer``,
``handler`` (one message, start to finish) and ``server``. Wiring: ``bootstrap``;
``python -m services.gateway`` runs it. ``publish`` is the API and CLI for engines that write
StayEvents to Kafka themselves.

What an engine sees: AA once the StayEvent (``stays.raw.<code>``, or ``patients.merges`` for an
A40) and the message's archive entry (``hl7.archive``) are confirmed by Kafka; AE for content
errors and AR for envelope errors, each with ERR segments; AA for triggers the platform does not
use. When Kafka does not confirm within the ACK time-out, no ACK at all and the connection is
closed, so that the engine resends (an AE would make most engines give the message up).
"""
