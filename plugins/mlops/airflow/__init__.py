"""The only part of the package that knows Airflow.

``dagkit`` builds one DAG per pipeline; ``hooks`` reach the lake, MLflow, Great Expectations and the
signing key through Airflow connections; ``operators`` are thin: each creates its hooks and calls a
stage function of the core; ``notifications`` sends a notice through Airflow's notifiers. The
report pages' app is the plugin file ``plugins/mlops_reports.py`` itself, where Airflow finds it.
"""
