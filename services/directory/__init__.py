"""The practitioner directory: the Annuaire Santé extracts (RPPS and MSSanté) in PostgreSQL,
published on the compacted ``practitioners`` topic.

    python -m services.directory import --personnes FILE --mssante FILE
    python -m services.directory preferences RPPS [--opt-out | --opt-in] [--preferred-address A]
    python -m services.directory publish
    python -m services.directory.sample

The simulator lists the shipped sample's GPs with
``services.directory.sample.sample_general_practitioners()``.
"""
