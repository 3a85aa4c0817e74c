"""Batch scoring: a validated partition in, a predictions partition out, naming the model (``batch``).

Pure Python, no Airflow import.
"""
