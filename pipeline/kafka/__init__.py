"""Kafka plumbing shared by the CLI, the workers and the tests (aiokafka)."""
