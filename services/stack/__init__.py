"""The local stack: Kafka, the schema registry, PostgreSQL and an SMTP server as local processes.

No Docker: each component is assembled from its registry (Maven Central, Debian, PyPI), runs as a
process under the git-ignored ``.stack/`` folder, and is waited for by a health check.
"""
