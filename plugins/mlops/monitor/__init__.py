"""Monitoring: drift of a partition against the champion's reference profile, and the retrain trigger.

``drift`` holds the statistics (PSI, KS, chi-square) and the verdict; ``report`` builds the profile
and one partition's report and decides whether to trigger; ``stage`` is the monitor stage;
``report_store`` reads and writes reports in the lake; ``page`` renders a report as HTML.
Pure Python, no Airflow import.
"""
