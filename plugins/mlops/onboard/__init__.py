"""Bringing a dataset: ``draft`` drafts a pipeline YAML from a sample; ``check`` checks a pipeline
(config, suite, one landed partition) as the DAGs would, without Airflow. Pure Python.
"""

from mlops import names_of

__getattr__ = names_of(__name__, "draft")
