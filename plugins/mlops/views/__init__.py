"""Pages of the package's UI: the Models view (a pipeline's model life at a glance).

``models`` gathers the data from the lake's index and the registry; ``svg`` draws charts on the
server (no script, no fonts or files from elsewhere); ``page`` writes the HTML, escaping every value.
Pure Python, no Airflow import: the ``mlops_models`` plugin serves them behind Airflow's login.
"""
