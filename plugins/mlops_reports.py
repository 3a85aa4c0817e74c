"""Airflow plugin: the lake's report pages (Data Docs, drift reports) served by the API server.

``GET /mlops/reports/<pipeline>/ds=<day>/<name>`` returns a committed report file of the lake,
local or S3 (``mlops.report_pages`` decides what may be served, and under which headers: a CSP that lets
no script run and no request leave the page). The caller must be logged in to
Airflow (the UI's session cookie or a bearer token) and allowed to read the pipeline's ingest DAG.
Task links (``Data Docs``, ``Drift report``) point here, so they open wherever the lake is.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Response

from mlops.lake.report_pages import ROUTE, SECURITY_HEADERS


def _app() -> FastAPI:
    from airflow.api_fastapi.core_api.security import get_user

    app = FastAPI(title="MLOps reports", docs_url=None, redoc_url=None, openapi_url=None)

    # ``user`` has no annotation: this module's annotations are strings, which FastAPI resolves in
    # the module's globals, and Airflow's API modules are imported only here, in the API server.
    def allowed(pipeline: str, user=Depends(get_user)) -> None:  # noqa: B008
        from mlops.airflow.ui_pages import may_read
        from mlops.names import dag_id as dag_id_of

        if not may_read(pipeline, user):
            raise HTTPException(403, f"not allowed to read {dag_id_of(pipeline, 'ingest')}'s reports")

    @app.get("/reports/{pipeline}/{path:path}", dependencies=[Depends(allowed)])
    def report(pipeline: str, path: str) -> Response:
        from mlops.airflow.hooks.lake import storage_for
        from mlops.lake.report_pages import NotServed, read_report_file
        from mlops.settings import get_settings

        settings = get_settings()
        pipelines = {p.stem for p in settings.pipelines_dir.glob("*.yaml")}
        try:
            body, media_type = read_report_file(
                storage_for(settings.lake_root, settings.aws_conn_id), pipelines, pipeline, path
            )
        except NotServed as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(body, media_type=media_type, headers=SECURITY_HEADERS)

    return app


class MlopsReportsPlugin(AirflowPlugin):
    name = "mlops_reports"
    fastapi_apps = [{"app": _app(), "url_prefix": ROUTE, "name": "MLOps reports"}]
