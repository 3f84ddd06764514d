"""Fault tests: a real service fails under load and comes back; nothing is lost, doubled or shown wrong.

Each test runs its own private instance (PostgreSQL, Redis, RabbitMQ, SMTP) on free ports, never the
machine's shared services, and is bounded in time. They assert row counts, e-mail counts and answers.
"""
