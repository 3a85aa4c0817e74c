"""Bringing a dataset: ``draft`` drafts a pipeline YAML from a sample; ``check`` checks a pipeline
(config, suite, one landed partition) as the DAGs would, without Airflow. Pure Python.
"""
