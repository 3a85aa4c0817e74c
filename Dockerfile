# The image of every Airflow component and of the MLflow server in docker-compose.yaml.
# The tag must match the apache-airflow pin in requirements.txt (tests/integration/test_compose.py).
FROM apache/airflow:3.3.2-python3.11

# The official way to extend the image: pip as the airflow user, never as root. The constraints pin every
# transitive package to what the tests ran with.
USER airflow
COPY requirements.txt constraints.txt /opt/airflow/
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt -c /opt/airflow/constraints.txt
# MLflow's users database (docker-compose.yaml mounts a volume here): owned by the user that runs it.
RUN mkdir -p /opt/airflow/mlflow-auth

# Baked in so the image runs without the working tree (a worker on another host); docker-compose.yaml
# mounts the working tree over these folders. Airflow puts the plugins folder on sys.path for its own
# components; PYTHONPATH does it for `python -m mlops...`.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/
ENV PYTHONPATH=/opt/airflow/plugins \
    MLOPS_INCLUDE_DIR=/opt/airflow/include
