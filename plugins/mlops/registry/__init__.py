"""The model registry: registration, signed champion moves under a lock, verified model loading.

``champion`` registers versions and moves the ``champion`` alias by compare-and-set, with the signed
move history that says who was champion on which day; ``signing`` signs and verifies versions,
records and the files a trial uploaded, and loads only verified copies; ``rest`` reads the registry
over MLflow's REST API without importing MLflow. Pure Python, no Airflow import.
"""

from mlops import names_of

__getattr__ = names_of(__name__, "champion")
