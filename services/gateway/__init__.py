"""The HL7 v2 MLLP gateway: establishments' ADT (IHE PAM FR) in, StayEvents on Kafka out.

Pure logic: ``hl7`` (parsing), ``mllp`` (framing), ``pam`` (mapping), ``covid`` (status table),
``ack`` (acknowledgements), ``intake`` (what to do with one message). Adapters: ``kafka_writer``
and ``server``. Wiring: ``bootstrap``; ``python -m services.gateway`` runs it. ``publish`` is the
API and CLI for engines that write StayEvents to Kafka themselves.
"""
