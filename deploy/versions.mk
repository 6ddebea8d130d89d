# The one place where the versions of the stack's components are pinned.
# Kafka: the newest 4.x that faust-streaming (aiokafka 0.14) speaks to and that is whole on Maven
# Central (4.4.0 names kafka-tools-api:4.4.0 in its POM, which was never published), pinned exactly.
KAFKA_VERSION := 4.3.1
SCALA_VERSION := 2.13
# Kafka 4.x ships no logging backend in its POM; slf4j 1.7 means the log4j-slf4j-impl binding.
LOG4J_VERSION := 2.25.2
APICURIO_VERSION := 3.3.3
