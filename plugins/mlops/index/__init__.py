"""The lake's index: each stage's per-partition summary, which pages read instead of every report.

``records`` writes and reads them (``<pipeline>/index/ds=<key>/<stage>/``). Pure Python, no Airflow.
"""
