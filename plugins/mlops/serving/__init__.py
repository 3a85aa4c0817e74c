"""The serving service: a pipeline's champion over HTTP, following the registry, watched.

``rows`` reads a request body (JSON records or CSV) into typed rows with the pipeline schema's own
coercion and row-level checks, naming the row and the field of every bad value; ``champion`` holds
the verified champion of each pipeline and swaps in a newly promoted one off the request path;
``metrics`` holds the Prometheus metrics, in a registry of their own; ``served`` buffers the answered
rows and commits them to the lake's ``served`` zone; ``app`` is the FastAPI application over them.
``python -m mlops serve`` builds the storage and clients and runs it on uvicorn. Pure Python, no
Airflow import; FastAPI, MLflow and pandas are imported by the modules that use them, not here.
"""
