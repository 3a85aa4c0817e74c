"""Hooks: one per external system, stateless, credentials from Airflow connections, clients lazy."""
