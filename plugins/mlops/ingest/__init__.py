"""Ingest: a partition landed as it came, then gated into ``validated`` and ``quarantine``.

``parsing`` reads raw CSV/Parquet as strings and coerces them to the declared types; ``suite``
generates the Great Expectations suite from the YAML; ``validation`` runs it with the row masks;
``data_docs`` draws the escaped report page; ``stage`` is the ingest stage itself (readiness of the
landing folder, landing, the gate). Pure Python, no Airflow import.
"""
