"""Pipeline configuration: one YAML file per pipeline, loaded into typed models (``pipeline``).

Owns the YAML keys, their defaults and limits, the per-pipeline config errors, and discovery of a
pipelines folder. Pure Python, no Airflow import; imported while DAG files parse, so it stays light.
"""

from mlops import names_of

__getattr__ = names_of(__name__, "pipeline")
