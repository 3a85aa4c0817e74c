"""The lake's index: each stage's per-partition summary, which pages read instead of every report.

``records`` writes and reads them (``<pipeline>/index/ds=<key>/<stage>/``); ``mlops.tools.index_rebuild``
writes them for a lake that predates them. Pure Python, no Airflow.
"""
