"""Code shared by every service: settings, logging, Kafka clients, Avro serde, topics, database."""
