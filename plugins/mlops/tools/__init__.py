"""Tools around the pipeline, not stages of it: ``preflight`` (are the services reachable),
``stack`` (what the local stacks' scripts share), ``scenario`` and ``sensor_scenario`` (the demo
data generators), ``replay_report`` (a replay's outcome, day by day). Pure Python, no Airflow import.
"""
